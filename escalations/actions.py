"""What a rep does to a lead from a message or a signed link (SPEC §9), in one place for the link
page and the Slack app: who may act, when a button is out of date, the idempotency of an action,
and the sentence that says what it recorded.

- Who may act: the lead's current owner, or a team lead or manager of the lead's team, while
  active and while the lead is open (`permission`).
- An action is recorded once per key (`ActionReceipt.key`, unique in the database): the link
  form's one-time nonce, or Slack's message and button (or modal). The key is claimed by an
  insert in the action's transaction, so a replay, a Slack retry or a double click records
  nothing new and gets the first action's summary back.
- Recording goes through `leadops.lifecycle.record_activity`, like every other channel: a call
  or an email by the owner is progress and resets the timer; a disqualification needs a reason.
- Slack actions are audited (`slack_action`: the Slack user, the button, the result), refusals
  included; the refusal's event is written in its own transaction, since nothing else is."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations.explain import open_timer_of, sla_status
from escalations.models import ActionChannel, ActionReceipt, Outcome, SlaTimer
from leadops import lifecycle
from leadops.actors import Actor, resolve_actor
from leadops.models import ActivityKind, Lead
from teams.models import Rep, Role

# The actions a rep can take from a message or a link: name -> activity kind.
ACTIONS = {
    "call": ActivityKind.CALL,
    "email": ActivityKind.EMAIL,
    "disqualify": ActivityKind.DISQUALIFY,
}
VERBS = {"call": "Call logged", "email": "Email logged", "disqualify": "Disqualified"}
OUTCOME_PHRASES = {
    Outcome.MET: "SLA met",
    Outcome.MET_LATE: "SLA met late",
    Outcome.CANCELLED: "SLA timer cancelled",
}
# Roles that may act on any lead of their own team.
TEAM_ROLES = (Role.LEAD, Role.MANAGER)


class Refused(Exception):
    """The action was not taken; `code` says which rule refused it, the message says why in a
    sentence a rep can read."""

    def __init__(self, code: str, message: str, *, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.field = field  # the input at fault, when the action's input was refused


@dataclass(frozen=True)
class Permission:
    allowed: bool
    code: str = ""
    reason: str = ""


@dataclass(frozen=True)
class ActionOutcome:
    """`recorded` is False for a replay: nothing new was written, `summary` is the first one's."""

    recorded: bool
    summary: str
    lead: Lead
    rep: Rep
    activity: object | None = None  # leadops.models.Activity


# --- the rules ------------------------------------------------------------------------------------


def permission(rep, lead) -> Permission:
    """Whether `rep` may act on `lead` (from a message or a link), and if not, why."""
    if not rep.active:
        return Permission(
            False, "inactive", f"{rep.name} is no longer active, so this offers no actions."
        )
    if lead.is_closed:
        return Permission(
            False,
            "closed",
            f"This lead is closed ({lead.get_state_display()}). Nothing more can be recorded.",
        )
    if lead.owner_id == rep.pk:
        return Permission(True)
    if rep.role in TEAM_ROLES and rep.team_id == lead.team_id:
        return Permission(True)
    owner = lead.owner.name if lead.owner_id else "nobody"
    return Permission(
        False,
        "not_allowed",
        f"You can't act on this lead: it is owned by {owner}. Only its owner or a team lead "
        f"or manager of {lead.team.name} can act on it.",
    )


def _check_current(lead, timer, expect_timer_id) -> None:
    """A button carries the id of the timer its message was about: once that timer has moved on
    (progress, a reassignment, a revert), the message is out of date."""
    current = timer.pk if timer is not None else None
    if current != expect_timer_id:
        owner = lead.owner.name if lead.owner_id else "nobody"
        raise Refused(
            "stale",
            f"This message is out of date: the lead has moved on since it was sent (it is now "
            f"in {lead.state}, owned by {owner}). Nothing was recorded; open the lead to see "
            f"where it stands.",
        )


def _check(rep, lead, timer, expect_timer_id) -> None:
    allowed = permission(rep, lead)
    if not allowed.allowed:
        raise Refused(allowed.code, allowed.reason)
    if expect_timer_id is not ANY_TIMER:
        _check_current(lead, timer, expect_timer_id)


ANY_TIMER = object()  # the link page is not tied to one message: any timer will do


def summary(activity, lead, timer_before: SlaTimer | None, *, now) -> str:
    """ "Call logged by Asha Rao at 10:42 IST · SLA met": what an action did, in the market's
    local time, with what became of the SLA timer it was about."""
    local = activity.recorded_at.astimezone(ZoneInfo(lead.market.timezone))
    text = f"{VERBS.get(activity.kind, activity.get_kind_display())} by {activity.actor_name}"
    text += f" at {local:%H:%M} {local.tzname()}"
    if activity.reason:
        text += f" ({activity.reason})"
    if timer_before is None:
        sla = "no SLA"
    else:
        timer = SlaTimer.objects.get(pk=timer_before.pk)
        timer.lead = lead
        if timer.completed_at is not None:
            sla = OUTCOME_PHRASES.get(timer.outcome, f"SLA {timer.get_outcome_display()}")
        else:
            sla = f"SLA clock still running ({sla_status(lead, timer, now).phrase})"
    return f"{text} · {sla}"[:300]


# --- acting ---------------------------------------------------------------------------------------


def _locked_lead(lead_id) -> Lead:
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("market", "team", "owner")
        .filter(pk=lead_id)
        .first()
    )
    if lead is None:
        raise Refused("gone", "This lead no longer exists.")
    return lead


def _act(
    *,
    lead_id,
    action: str,
    key: str,
    channel: str,
    choose_rep,
    expect_timer_id,
    reason: str,
    notes: str,
    on_done,
) -> ActionOutcome:
    kind = ACTIONS.get(action)
    if kind is None:
        raise Refused("unknown_action", f"Unknown action {action!r}.")
    reason = (reason or "").strip()
    if kind == ActivityKind.DISQUALIFY and not reason:
        raise lifecycle.InvalidLeadInput("a disqualification needs a reason", field="reason")
    with transaction.atomic():
        lead = _locked_lead(lead_id)
        rep = choose_rep(lead)
        now = timezone.now()
        try:
            with transaction.atomic():
                receipt = ActionReceipt.objects.create(
                    key=key, channel=channel, action=action, lead=lead, rep=rep, created_at=now
                )
        except IntegrityError:
            earlier = ActionReceipt.objects.select_related("activity").get(key=key)
            outcome = ActionOutcome(False, earlier.summary, lead, rep, earlier.activity)
            on_done(outcome, "duplicate")
            return outcome
        timer = open_timer_of(lead)
        _check(rep, lead, timer, expect_timer_id)
        activity = lifecycle.record_activity(lead, kind, actor=rep, reason=reason, notes=notes)
        receipt.activity = activity
        receipt.summary = summary(activity, lead, timer, now=now)
        receipt.save(update_fields=["activity", "summary"])
        outcome = ActionOutcome(True, receipt.summary, lead, rep, activity)
        on_done(outcome, "recorded")
    return outcome


def link_key(rep_id, lead_id, nonce: str) -> str:
    return f"link:{rep_id}:{lead_id}:{nonce}"


def act_by_link(rep, lead_id, action: str, *, nonce: str, reason="", notes="") -> ActionOutcome:
    """An action from the signed link page, as the rep the link is bound to. `nonce` is the
    form's one-time value: a replayed form records nothing new."""

    def choose_rep(lead):
        return rep

    return _act(
        lead_id=lead_id,
        action=action,
        key=link_key(rep.pk, lead_id, nonce),
        channel=ActionChannel.LINK,
        choose_rep=choose_rep,
        expect_timer_id=ANY_TIMER,
        reason=reason,
        notes=notes,
        on_done=lambda outcome, result: None,
    )


# --- from Slack -----------------------------------------------------------------------------------


def slack_key(*parts) -> str:
    """An idempotency key from parts of a Slack payload (hashed when it would be too long)."""
    key = "slack:" + ":".join(str(p) for p in parts)
    if len(key) > 200:
        key = "slack:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _slack_reps(slack_user_id: str):
    if not slack_user_id:
        return []
    return list(
        Rep.objects.filter(slack_user_id=slack_user_id, active=True)
        .select_related("team", "user")
        .order_by("pk")
    )


def rep_for_slack_user(slack_user_id: str):
    """The active rep a Slack user is (the first, if one person has reps on several teams)."""
    return next(iter(_slack_reps(slack_user_id)), None)


def _slack_rep_chooser(slack_user_id: str, reps: list):
    def choose(lead):
        if not reps:
            raise Refused(
                "unlinked",
                f"Your Slack account is not linked to a rep: ask an ops manager to put your "
                f"Slack user id ({slack_user_id}) on your rep in LeadOps.",
            )
        # One person may have a rep on several teams: act as the one allowed to.
        for rep in reps:
            if permission(rep, lead).allowed:
                return rep
        return reps[0]

    return choose


def _slack_actor(rep, slack_user_id: str) -> Actor:
    if rep is not None:
        return resolve_actor(rep)
    return Actor(rep=None, user=None, name=f"Slack user {slack_user_id}")


def _audit_slack(
    *, slack_user_id, action_id, result, key, lead=None, rep=None, detail="", activity=None
):
    log.record(
        AuditKind.SLACK_ACTION,
        lead=lead,
        actor=_slack_actor(rep, slack_user_id),
        details={
            "slack_user": slack_user_id,
            "action": action_id,
            "result": result,
            "detail": detail[:300],
            "key": key,
            "activity_id": activity.pk if activity is not None else None,
        },
    )


def _audit_refusal(exc: Exception, *, slack_user_id, reps, action_id, key, lead_id) -> None:
    """A refusal changed nothing, so its event is written in a transaction of its own."""
    with transaction.atomic():
        lead = Lead.objects.select_related("owner").filter(pk=lead_id).first()
        _audit_slack(
            slack_user_id=slack_user_id,
            action_id=action_id,
            result="refused",
            key=key,
            lead=lead,
            rep=reps[0] if reps else None,
            detail=f"{getattr(exc, 'code', 'invalid')}: {exc}",
        )


def act_by_slack(
    slack_user_id: str,
    lead_id,
    action: str,
    *,
    key: str,
    expect_timer_id,
    action_id: str,
    reason: str = "",
) -> ActionOutcome:
    """An action from a Slack button or modal by the rep linked to `slack_user_id`. The button's
    `expect_timer_id` must still be the lead's open timer. Raises `Refused` (a lifecycle error
    becomes one too); every outcome is audited."""

    def on_done(outcome: ActionOutcome, result: str) -> None:
        _audit_slack(
            slack_user_id=slack_user_id,
            action_id=action_id,
            result=result,
            key=key,
            lead=outcome.lead,
            rep=outcome.rep,
            detail=outcome.summary,
            activity=outcome.activity,
        )

    reps = _slack_reps(slack_user_id)
    refused = {"slack_user_id": slack_user_id, "reps": reps, "action_id": action_id}
    try:
        return _act(
            lead_id=lead_id,
            action=action,
            key=key,
            channel=ActionChannel.SLACK,
            choose_rep=_slack_rep_chooser(slack_user_id, reps),
            expect_timer_id=expect_timer_id,
            reason=reason,
            notes="",
            on_done=on_done,
        )
    except lifecycle.LifecycleError as exc:
        _audit_refusal(exc, **refused, key=key, lead_id=lead_id)
        raise Refused("invalid", f"Nothing was recorded: {exc}.", field=exc.field) from exc
    except Refused as exc:
        _audit_refusal(exc, **refused, key=key, lead_id=lead_id)
        raise


def check_slack(slack_user_id: str, lead_id, *, expect_timer_id, action_id: str) -> Lead:
    """Whether the Slack user may act on the lead from this button now (before a modal asks for
    more); raises `Refused` (audited) like `act_by_slack` would, records nothing otherwise."""
    reps = _slack_reps(slack_user_id)
    choose = _slack_rep_chooser(slack_user_id, reps)
    try:
        lead = Lead.objects.select_related("market", "team", "owner").filter(pk=lead_id).first()
        if lead is None:
            raise Refused("gone", "This lead no longer exists.")
        _check(choose(lead), lead, open_timer_of(lead), expect_timer_id)
    except Refused as exc:
        _audit_refusal(
            exc,
            slack_user_id=slack_user_id,
            reps=reps,
            action_id=action_id,
            key="",
            lead_id=lead_id,
        )
        raise
    return lead
