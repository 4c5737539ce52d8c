"""The lead lifecycle (SPEC §3): allowed moves, what counts as progress, and the verbs that
change a lead. Every verb is atomic, locks the lead row (the sweep and reassignment race it) and
announces what happened in one place, `_announce`: the `lead_changed` signal, to which the
escalations app (routing, SLA timers) listens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from leadops.actors import Actor, resolve_actor
from leadops.models import CLOSED_STATES, Activity, ActivityKind, Lead, LeadState
from leadops.signals import lead_changed

S = LeadState
K = ActivityKind


class LifecycleError(Exception):
    """A request the lifecycle refuses; the message says why. `field` names the bad input."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class IllegalTransition(LifecycleError):
    """A state change the lifecycle does not allow (HTTP 409 in the API)."""


class InvalidLeadInput(LifecycleError):
    """Bad input to a lifecycle verb (HTTP 400 in the API)."""


FORWARD_PATH = (S.NEW, S.CONTACTED, S.QUALIFIED, S.PROPOSAL, S.NEGOTIATION, S.WON)
DISQUALIFIABLE = frozenset({S.NEW, S.CONTACTED, S.QUALIFIED})


def _allowed_transitions() -> dict[str, frozenset[str]]:
    allowed: dict[str, set[str]] = {state: set() for state in S}
    for here, after in zip(FORWARD_PATH, FORWARD_PATH[1:], strict=False):
        allowed[here].add(after)
    for state in S:
        if state not in CLOSED_STATES:
            allowed[state].add(S.LOST)
    for state in DISQUALIFIABLE:
        allowed[state].add(S.UNQUALIFIED)
    return {state: frozenset(targets) for state, targets in allowed.items()}


ALLOWED_TRANSITIONS = _allowed_transitions()
OUTBOUND_ATTEMPTS = frozenset({K.CALL, K.EMAIL, K.MESSAGE})


@dataclass(frozen=True)
class ProgressRule:
    """What resets the SLA timer in one state (SPEC §3, the progress table)."""

    # activity kind -> the state the lead moves to; `by_owner` kinds count only from the owner
    activities: dict[str, str] = field(default_factory=dict)
    by_owner: frozenset[str] = frozenset()
    transitions: frozenset[str] = frozenset()


PROGRESS: dict[str, ProgressRule] = {
    S.NEW: ProgressRule(
        activities={
            K.CALL: S.CONTACTED,
            K.EMAIL: S.CONTACTED,
            K.MESSAGE: S.CONTACTED,
            K.DISQUALIFY: S.UNQUALIFIED,
        },
        by_owner=OUTBOUND_ATTEMPTS,
        # A disqualification is a decision whichever way it is recorded.
        transitions=frozenset({S.UNQUALIFIED}),
    ),
    S.CONTACTED: ProgressRule(transitions=frozenset({S.QUALIFIED, S.UNQUALIFIED})),
    S.QUALIFIED: ProgressRule(transitions=frozenset({S.PROPOSAL})),
    S.PROPOSAL: ProgressRule(transitions=frozenset({S.NEGOTIATION, S.LOST})),
}

FUTURE_SKEW = timedelta(minutes=5)


def is_progress_transition(from_state: str, to_state: str) -> bool:
    rule = PROGRESS.get(from_state)
    return bool(rule and to_state in rule.transitions)


def progress_target(lead: Lead, kind: str, actor: Actor) -> str | None:
    """The state an activity moves the lead to when it counts as progress, else None.

    A view, a note or a meeting never counts. An outbound attempt counts only when the owner
    made it (or anyone, when the lead has no owner yet)."""
    rule = PROGRESS.get(lead.state)
    if rule is None or kind not in rule.activities:
        return None
    if kind in rule.by_owner:
        if actor.rep is None:
            return None
        if lead.owner_id is not None and actor.rep.pk != lead.owner_id:
            return None
    return rule.activities[kind]


def why_not_progress(state: str, kind: str, actor: Actor, owner=None) -> str:
    """Why an activity of `kind` recorded by `actor` on a lead in `state` (owned by `owner`)
    does not count as progress: the other side of `progress_target`, in words for the user."""
    rule = PROGRESS.get(state)
    if rule is None:
        return f"in {state} no activity counts as progress"
    if kind in rule.by_owner and kind in rule.activities:
        who = f"{owner.name}'s" if owner is not None else "the owner's"
        return f"in {state} only {who} own calls, emails and messages count, not another person's"
    moves = ", ".join(sorted(rule.transitions))
    return f"in {state} a {kind} never counts; only moving the lead on ({moves}) does"


@dataclass(frozen=True)
class LeadChange:
    """One announcement: a lead was created, changed state, made progress, was held or resumed."""

    kind: str  # "created" | "state_changed" | "held" | "resumed"
    lead: Lead
    at: datetime
    actor: Actor
    from_state: str | None = None
    to_state: str | None = None
    progress: bool = False
    progress_at: datetime | None = None
    activity: Activity | None = None
    reason: str = ""


def _announce(change: LeadChange) -> None:
    """The single place where lifecycle events leave this app (same transaction). Nobody
    listening would silently mean "no SLA" for every lead, so that is an error."""
    if not lead_changed.has_listeners(Lead):
        raise ImproperlyConfigured(
            "nothing listens to leadops.signals.lead_changed: is the escalations app installed?"
        )
    lead_changed.send(sender=Lead, change=change)


# --- verbs ----------------------------------------------------------------------------------------


def lock_lead(lead: Lead) -> Lead:
    """Lock the lead's row and refresh the caller's instance from it."""
    if lead.pk is None:
        raise InvalidLeadInput("the lead is not saved yet", field="lead")
    try:
        # NO KEY UPDATE, the lock an UPDATE takes: a sweep inserting an audit or outbox row
        # that names this lead (a foreign-key check, FOR KEY SHARE) does not wait for us while
        # we wait for its timer lock.
        locked = Lead.objects.select_for_update(no_key=True).get(pk=lead.pk)
    except Lead.DoesNotExist:
        raise InvalidLeadInput(f"lead {lead.pk} does not exist", field="lead") from None
    for f in Lead._meta.concrete_fields:
        setattr(lead, f.attname, getattr(locked, f.attname))
    return lead


def _save(lead: Lead, actor: Actor, reason: str, update_fields: list[str]) -> None:
    lead._history_user = actor.user
    lead._change_reason = reason[:100]
    lead.save(update_fields=[*update_fields, "updated_at"])


def _clean_text(value: str, name: str, limit: int) -> str:
    value = (value or "").strip()
    if len(value) > limit:
        raise InvalidLeadInput(f"{name} is longer than {limit} characters", field=name)
    return value


def create_lead(**fields) -> Lead:
    """Create a NEW lead (idempotent by `external_id`: a second call returns the first lead);
    the fields as `_new_lead` names them, with `external_id` and `actor`.

    Without an owner the lead is routed (by the `lead_changed` listener) to an available rep of
    its team (SPEC §7); if nobody is available it stays unowned and the team's manager is told."""
    lead, _ = get_or_create_lead(**fields)
    return lead


def get_or_create_lead(*, external_id=None, actor=None, **fields) -> tuple[Lead, bool]:
    """`create_lead`, also saying whether the lead was created (True) or found by its
    `external_id` (False), also when a concurrent create with the same `external_id` won."""
    who = resolve_actor(actor)
    external_id = (external_id or "").strip() or None
    # A repeated external_id is found when the INSERT fails on the unique index (or when the
    # input no longer passes, e.g. its owner was deactivated since): not looked up first, so a
    # new lead, the usual case, costs no extra query.
    try:
        lead = _new_lead(external_id=external_id, **fields)
        with transaction.atomic():
            lead._history_user = who.user
            lead._change_reason = "created"
            lead.save()
            _announce(
                LeadChange(kind="created", lead=lead, at=lead.created_at, actor=who, to_state=S.NEW)
            )
    except (IntegrityError, InvalidLeadInput):
        # Known already, from an earlier request or a concurrent one that won the race (on
        # PostgreSQL our INSERT waited for its commit on the unique index): its lead.
        if external_id:
            existing = Lead.objects.filter(external_id=external_id).first()
            if existing is not None:
                return existing, False
        raise
    return lead, True


def _new_lead(
    *, name, company="", market, source, team, owner=None, email="", phone="", external_id=None
) -> Lead:
    """The unsaved NEW lead, its input checked (InvalidLeadInput otherwise)."""
    name = _clean_text(name, "name", 200)
    if not name:
        raise InvalidLeadInput("a lead needs a name", field="name")
    if team.market_id != market.pk:
        raise InvalidLeadInput(
            f"team {team.slug} belongs to market {team.market.code}, not {market.code}",
            field="team",
        )
    if owner is not None and (owner.team_id != team.pk or not owner.active):
        raise InvalidLeadInput(f"{owner} is not an active rep of team {team.slug}", field="owner")
    now = timezone.now()
    lead = Lead(
        name=name,
        company=_clean_text(company, "company", 200),
        email=(email or "").strip(),
        phone=_clean_text(phone, "phone", 40),
        market=market,
        source=source,
        team=team,
        owner=owner,
        external_id=external_id,
        state=S.NEW,
        state_entered_at=now,
        created_at=now,
    )
    try:
        # The related rows are given as instances: no query to check that they exist.
        lead.full_clean(
            exclude=["market", "source", "team", "owner"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        first_field, messages = next(iter(exc.message_dict.items()))
        raise InvalidLeadInput(f"{first_field}: {' '.join(messages)}", field=first_field) from None
    return lead


def record_activity(
    lead: Lead,
    kind: str,
    *,
    actor,
    occurred_at: datetime | None = None,
    notes: str = "",
    reason: str = "",
) -> Activity:
    """Record an activity; when it is progress (SPEC §3) the lead moves on and its timer resets."""
    who = resolve_actor(actor)
    if kind not in ActivityKind.values:
        raise InvalidLeadInput(
            f"{kind!r} is not an activity kind ({', '.join(ActivityKind.values)})", field="kind"
        )
    now = timezone.now()
    if occurred_at is None:
        occurred_at = now
    elif timezone.is_naive(occurred_at):
        raise InvalidLeadInput("occurred_at needs a time zone", field="occurred_at")
    elif occurred_at > now + FUTURE_SKEW:
        raise InvalidLeadInput("occurred_at is in the future", field="occurred_at")
    reason = _clean_text(reason, "reason", 300)
    notes = (notes or "").strip()
    if kind == K.DISQUALIFY and not reason:
        raise InvalidLeadInput("a disqualification needs a reason", field="reason")
    with transaction.atomic():
        lock_lead(lead)
        if occurred_at < lead.created_at:
            raise InvalidLeadInput(
                "occurred_at is before the lead was created", field="occurred_at"
            )
        if kind == K.DISQUALIFY and lead.state not in DISQUALIFIABLE:
            raise IllegalTransition(
                f"a lead in {lead.state} cannot be disqualified"
                + ("" if lead.is_closed else "; mark it LOST instead")
            )
        target = progress_target(lead, kind, who)
        progress = target is not None
        if target is None and kind == K.DISQUALIFY:
            # Outside NEW a disqualification is a transition; the table says whether it counts.
            target = S.UNQUALIFIED
            progress = is_progress_transition(lead.state, target)
        activity = Activity.objects.create(
            lead=lead,
            kind=kind,
            actor=who.rep,
            actor_user=who.user,
            actor_name=who.name,
            occurred_at=occurred_at,
            recorded_at=now,
            notes=notes,
            reason=reason,
            counted_as_progress=progress,
        )
        if target is not None:
            _move(
                lead,
                target,
                who,
                now,
                reason=reason or f"{kind} recorded",
                progress=progress,
                progress_at=occurred_at,
                activity=activity,
            )
    return activity


def transition(lead: Lead, to_state: str, *, actor, reason: str = "") -> Lead:
    """Move a lead to another state; anything outside SPEC §3's moves raises IllegalTransition."""
    who = resolve_actor(actor)
    if to_state not in LeadState.values:
        raise InvalidLeadInput(
            f"{to_state!r} is not a state ({', '.join(LeadState.values)})", field="to_state"
        )
    reason = _clean_text(reason, "reason", 300)
    if to_state == S.UNQUALIFIED and not reason:
        raise InvalidLeadInput("a disqualification needs a reason", field="reason")
    with transaction.atomic():
        lock_lead(lead)
        now = timezone.now()
        _move(
            lead,
            to_state,
            who,
            now,
            reason=reason,
            progress=is_progress_transition(lead.state, to_state),
            progress_at=now,
        )
    return lead


def _move(lead, to_state, who, now, *, reason, progress, progress_at, activity=None) -> None:
    from_state = lead.state
    if to_state not in ALLOWED_TRANSITIONS[from_state]:
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[from_state])) or "none, it is closed"
        raise IllegalTransition(
            f"a lead in {from_state} cannot move to {to_state} (allowed: {allowed})"
        )
    lead.state = to_state
    lead.state_entered_at = now
    fields = ["state", "state_entered_at"]
    if lead.on_hold:
        lead.on_hold, lead.hold_reason, lead.hold_until, lead.held_at = False, "", None, None
        fields += ["on_hold", "hold_reason", "hold_until", "held_at"]
    _save(lead, who, f"{from_state} → {to_state}" + (f": {reason}" if reason else ""), fields)
    _announce(
        LeadChange(
            kind="state_changed",
            lead=lead,
            at=now,
            actor=who,
            from_state=from_state,
            to_state=to_state,
            progress=progress,
            progress_at=progress_at,
            activity=activity,
            reason=reason,
        )
    )


def put_on_hold(lead: Lead, *, actor, reason: str, resume_at: datetime | None = None) -> Lead:
    """Pause the lead's SLA clock while waiting on the customer."""
    who = resolve_actor(actor)
    reason = _clean_text(reason, "reason", 200)
    if not reason:
        raise InvalidLeadInput("a hold needs a reason", field="reason")
    now = timezone.now()
    if resume_at is not None:
        if timezone.is_naive(resume_at):
            raise InvalidLeadInput("resume_at needs a time zone", field="resume_at")
        if resume_at <= now:
            raise InvalidLeadInput("resume_at must be in the future", field="resume_at")
    with transaction.atomic():
        lock_lead(lead)
        if lead.is_closed:
            raise IllegalTransition(f"a lead in {lead.state} is closed and cannot be put on hold")
        if lead.on_hold:
            raise IllegalTransition("the lead is already on hold")
        lead.on_hold, lead.hold_reason, lead.hold_until, lead.held_at = True, reason, resume_at, now
        _save(lead, who, f"on hold: {reason}", ["on_hold", "hold_reason", "hold_until", "held_at"])
        _announce(LeadChange(kind="held", lead=lead, at=now, actor=who, reason=reason))
    return lead


def resume(lead: Lead, *, actor, reason: str = "") -> Lead:
    """End a hold; the SLA clock restarts with the business time that was left."""
    who = resolve_actor(actor)
    with transaction.atomic():
        lock_lead(lead)
        if not lead.on_hold:
            raise IllegalTransition("the lead is not on hold")
        now = timezone.now()
        lead.on_hold, lead.hold_reason, lead.hold_until, lead.held_at = False, "", None, None
        _save(
            lead,
            who,
            "resumed" + (f": {reason}" if reason else ""),
            ["on_hold", "hold_reason", "hold_until", "held_at"],
        )
        _announce(LeadChange(kind="resumed", lead=lead, at=now, actor=who, reason=reason))
    return lead
