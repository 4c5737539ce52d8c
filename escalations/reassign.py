"""Reassignment (SPEC §7): moving leads with their history, audit and messages; the sweep's
150 % stage in batches, with the limit per lead and state and the no-candidate path; routing of
new leads; a rep made inactive handing over; and the team lead's revert. Who gets a lead is
decided in escalations/candidates.py."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations import timers
from escalations.candidates import CandidateSearch, choose, find_candidate, load_pool
from escalations.models import (
    MessageKind,
    Outcome,
    Persona,
    Reassignment,
    ReassignmentCause,
    SlaTimer,
    Stage,
)
from escalations.notify import outbox
from escalations.permissions import check_can_revert
from escalations.policies import current_thresholds, resolve_many
from leadops import lifecycle
from leadops.actors import SYSTEM, Actor, resolve_actor
from leadops.bulk import insert_instances, update_by_pk
from leadops.lifecycle import InvalidLeadInput, lock_lead
from leadops.models import OPEN_STATES, Lead
from teams.models import Rep

NO_CANDIDATE_RETRY = timedelta(minutes=10)
LOCKED_RETRY = timedelta(minutes=1)


class ReassignError(Exception):
    """A reassignment or revert that cannot be done; the message says why."""


# --- moving leads ----------------------------------------------------------------------------


def _lock_lead(lead: Lead, *, skip_locked: bool = False) -> Lead | None:
    return _lock_leads([lead.pk], skip_locked=skip_locked).get(lead.pk)


def _lock_leads(ids, *, skip_locked: bool = False) -> dict[int, Lead]:
    # NO KEY UPDATE: rows naming the lead (audit, outbox) are not held up (see load_pool).
    qs = Lead.objects.select_for_update(
        skip_locked=skip_locked, no_key=True, of=("self",)
    ).select_related("market", "source", "team", "owner__team__market")
    return {lead.pk: lead for lead in qs.filter(pk__in=list(ids))}


def _save_owner(lead: Lead, rep: Rep | None, actor: Actor, reason: str) -> None:
    lead.owner = rep
    lead._history_user = actor.user
    lead._change_reason = reason[:100]
    lead.save(update_fields=["owner", "updated_at"])


@dataclass
class Move:
    lead: Lead
    to_rep: Rep
    timer: SlaTimer | None = None
    search: CandidateSearch | None = None


def _apply_moves(
    moves: list[Move],
    *,
    cause: str,
    who: Actor,
    now: datetime,
    correlation_id: str = "",
    managers: dict | None = None,
) -> list[Reassignment]:
    """Write a set of reassignments: the leads' owner and history, `Reassignment` rows, the
    old timers completed and fresh windows for the new owners, audit events, outbox rows.
    A constant number of statements however many moves (the sweep passes a whole batch)."""
    if not moves:
        return []
    from_reps = {m.lead.pk: (m.lead.owner if m.lead.owner_id else None) for m in moves}
    # The leads: owner and history (simple-history rows written in bulk, with reasons).
    update_by_pk(Lead, "owner_id", {m.lead.pk: m.to_rep.pk for m in moves}, updated_at=now)
    for m in moves:
        before = from_reps[m.lead.pk]
        m.lead.owner = m.to_rep
        m.lead._history_user = who.user
        m.lead._change_reason = (f"reassigned ({cause}) from {before or 'nobody'} to {m.to_rep}")[
            :100
        ]
    Lead.history.bulk_history_create([m.lead for m in moves], update=True, default_date=now)
    Rep.objects.filter(pk__in={m.to_rep.pk for m in moves}).update(last_assigned_at=now)
    reassignments = [
        Reassignment(
            lead=m.lead,
            timer=m.timer,
            state=m.lead.state,
            from_rep=from_reps[m.lead.pk],
            to_rep=m.to_rep,
            cause=cause,
            policy_id_used=m.timer.policy_id if m.timer else None,
            policy_version=m.timer.policy_version if m.timer else None,
            at=now,
            actor_user=who.user,
            actor_name=who.name[:150],
            candidates=m.search.considered if m.search else [],
        )
        for m in moves
    ]
    insert_instances(Reassignment, reassignments)
    # The old timers end (a paused one through the careful path); fresh windows start.
    elapsed = {}
    running = []
    for m in moves:
        if m.timer is None:
            continue
        calendar = timers.planning.calendar_for(m.lead, m.timer.clock)
        elapsed[m.lead.pk] = timers.planning.business_elapsed(m.timer, now, calendar)
        if cause == ReassignmentCause.SLA:
            m.timer.stage = Stage.REASSIGNED
        if m.timer.paused_at is not None:
            m.timer.save(update_fields=["stage"])
            timers.complete_timer(m.timer, now=now, outcome=Outcome.REASSIGNED, actor=who)
        else:
            running.append(m.timer)
    for stage in {t.stage for t in running}:
        SlaTimer.objects.filter(pk__in=[t.pk for t in running if t.stage == stage]).update(
            stage=stage, outcome=Outcome.REASSIGNED, completed_at=now, next_fire_at=None
        )
    timers.supersede_stage_messages([m.timer.pk for m in moves if m.timer])
    resolved = resolve_many({(m.lead.state, m.lead.market_id, m.lead.source_id) for m in moves})
    thresholds = current_thresholds().as_dict()
    fresh = {}
    for m in moves:
        policy = resolved.get((m.lead.state, m.lead.market_id, m.lead.source_id))
        if policy is None:
            continue
        episode = {}
        if m.timer is not None:
            before = from_reps[m.lead.pk]
            episode = {
                "episode": m.timer.episode,
                "episode_owner_ids": sorted(
                    {*m.timer.episode_owner_ids, *([before.pk] if before else [])}
                ),
                "auto_reassign_count": m.timer.auto_reassign_count
                + (1 if cause == ReassignmentCause.SLA else 0),
            }
        fresh[m.lead.pk] = timers.plan_timer(m.lead, policy, thresholds, now=now, **episode)
    insert_instances(SlaTimer, list(fresh.values()))
    log.record_many(timers.hold_carried_events(fresh.values(), actor=who, now=now))
    # The audit trail and the messages.
    kind = (
        AuditKind.SLA_BREACH_AUTO_REASSIGN
        if cause == ReassignmentCause.SLA
        else AuditKind.LEAD_ASSIGNED
    )
    events, rows = [], []
    for m, reassignment in zip(moves, reassignments, strict=True):
        before = from_reps[m.lead.pk]
        new_timer = fresh.get(m.lead.pk)
        events.append(
            log.build_values(
                kind,
                lead=m.lead,
                timer=m.timer,
                owner=before,
                actor=who,
                occurred_at=now,
                correlation_id=correlation_id,
                stage_due_at=m.timer.reassign_at if m.timer else None,
                elapsed=elapsed.get(m.lead.pk),
                details={
                    "reassignment_id": reassignment.pk,
                    "cause": cause,
                    "from_rep_id": before.pk if before else None,
                    "from_rep": before.name if before else None,
                    "to_rep_id": m.to_rep.pk,
                    "to_rep": m.to_rep.name,
                    "rule_version": {
                        "policy_version": reassignment.policy_version,
                        "thresholds_version": (m.timer.thresholds or {}).get("version")
                        if m.timer
                        else None,
                    },
                    "new_timer_id": new_timer.pk if new_timer else None,
                    "candidates": reassignment.candidates,
                },
            )
        )
        rows += _reassignment_messages(m.lead, reassignment, m.timer, now, managers)
    log.record_many(events)
    outbox.add(rows)
    return reassignments


def _reassignment_messages(lead, reassignment, timer, now, managers) -> list[dict]:
    key = f"reassign:{reassignment.pk}"
    context = {
        "reassignment_id": reassignment.pk,
        "cause": reassignment.cause,
        "from_rep_id": reassignment.from_rep_id,
        "to_rep_id": reassignment.to_rep_id,
        "state": lead.state,
        "at": now.isoformat(),
    }
    common = {
        "lead": lead,
        "now": now,
        "timer": timer,
        "stage": Stage.REASSIGNED,
        "context": context,
    }
    targets = [
        (Persona.OLD_OWNER, MessageKind.REASSIGNED_FROM, reassignment.from_rep),
        (Persona.NEW_OWNER, MessageKind.REASSIGNED_TO, reassignment.to_rep),
        (Persona.MANAGER, MessageKind.REASSIGNED_TEAM, outbox.team_manager(lead.team_id, managers)),
    ]
    rows = [
        outbox.message_values(
            key=f"{key}:{persona}", kind=kind, persona=persona, recipient=recipient, **common
        )
        for persona, kind, recipient in targets
        # A lead that had no owner has nobody to tell it was taken away.
        if persona != Persona.OLD_OWNER or reassignment.from_rep_id
    ]
    return rows


def reassign_lead(
    lead: Lead,
    to_rep: Rep,
    *,
    cause: str,
    actor,
    now: datetime | None = None,
    timer: SlaTimer | None = None,
    search: CandidateSearch | None = None,
    correlation_id: str = "",
) -> Reassignment:
    """Give `lead` to `to_rep`: the lead's history, a `Reassignment` row, the audit event, the
    outbox rows, and a fresh SLA window for the new owner in the same state. Atomic."""
    who = resolve_actor(actor)
    now = now or timezone.now()
    if cause not in ReassignmentCause.values:
        raise ReassignError(f"unknown cause {cause!r}")
    with transaction.atomic():
        try:
            lock_lead(lead)  # the sweep and other users race this lead
        except InvalidLeadInput:
            raise ReassignError("the lead does not exist any more") from None
        if lead.owner_id == to_rep.pk:
            raise ReassignError(f"{to_rep} already owns this lead")
        if to_rep.team_id != lead.team_id:
            raise ReassignError(f"{to_rep} is not on team {lead.team.slug}")
        if not to_rep.active:
            raise ReassignError(f"{to_rep} is inactive")
        if lead.is_closed:
            raise ReassignError(f"the lead is {lead.state}; closed leads are not reassigned")
        timer = timer or timers.open_timer(lead)
        (reassignment,) = _apply_moves(
            [Move(lead, to_rep, timer, search)],
            cause=cause,
            who=who,
            now=now,
            correlation_id=correlation_id,
        )
    return reassignment


def _tell_manager(lead, timer, now, kind, key, managers=None, context=None) -> dict:
    return outbox.message_values(
        key=key,
        kind=kind,
        persona=Persona.MANAGER,
        lead=lead,
        now=now,
        timer=timer,
        stage=Stage.REASSIGNED if timer else "",
        recipient=outbox.team_manager(lead.team_id, managers),
        context=context or {},
    )


def reassign_due(
    timers_due, *, now: datetime, correlation_id: str = "", managers: dict | None = None
) -> Counter:
    """The sweep's 150 % stage for a batch of timers whose rows the caller has locked.
    Counts outcomes: "reassigned", "no_candidate", "limit_reached", "locked"."""
    outcomes: Counter = Counter()
    if not timers_due:
        return outcomes
    leads = _lock_leads([t.lead_id for t in timers_due], skip_locked=True)
    full = SlaTimer.objects.in_bulk([t.pk for t in timers_due])
    busy = [t.pk for t in timers_due if t.lead_id not in leads]
    if busy:  # a user is changing these leads right now: look again in a minute
        SlaTimer.objects.filter(pk__in=busy).update(next_fire_at=now + LOCKED_RETRY)
        outcomes["locked"] += len(busy)
    open_ones = []
    for claimed in timers_due:
        if claimed.lead_id not in leads:
            continue
        timer = full[claimed.pk]
        timer.lead = leads[claimed.lead_id]
        if timer.auto_reassign_count >= settings.REASSIGN_LIMIT_PER_STATE:
            _limit_reached(timer, now, correlation_id, managers)
            outcomes["limit_reached"] += 1
        else:
            open_ones.append(timer)
    if not open_ones:
        return outcomes
    pool = load_pool(
        [t.lead for t in open_ones],
        now,
        known_rep_ids={pk for t in open_ones for pk in t.episode_owner_ids},
    )
    moves, nobody = [], []
    for timer in open_ones:
        search = choose(timer.lead, pool, now, previous_owner_ids=timer.episode_owner_ids)
        if search.chosen is None:
            nobody.append((timer, search))
            continue
        pool.take(search.chosen, from_rep_id=timer.lead.owner_id, now=now)
        moves.append(Move(timer.lead, search.chosen, timer, search))
    _no_candidate(nobody, now, correlation_id, managers)
    _apply_moves(
        moves,
        cause=ReassignmentCause.SLA,
        who=SYSTEM,
        now=now,
        correlation_id=correlation_id,
        managers=managers,
    )
    outcomes["no_candidate"] += len(nobody)
    outcomes["reassigned"] += len(moves)
    return outcomes


def reassign_for_sla(
    timer: SlaTimer, *, now: datetime, correlation_id: str = "", managers: dict | None = None
) -> str:
    """`reassign_due` for one timer; returns its outcome."""
    outcomes = reassign_due([timer], now=now, correlation_id=correlation_id, managers=managers)
    return next(iter(outcomes))


def _limit_reached(timer: SlaTimer, now, correlation_id, managers) -> None:
    """Two auto-reassignments in this state already: stop, and tell the manager once."""
    lead = timer.lead
    if timer.limit_reached_at is None:
        timer.limit_reached_at = now
        log.record(
            AuditKind.REASSIGN_LIMIT_REACHED,
            timer=timer,
            actor=SYSTEM,
            occurred_at=now,
            stage_due_at=timer.reassign_at,
            correlation_id=correlation_id,
            elapsed=timers.planning.business_elapsed(
                timer, now, timers.planning.calendar_for(lead, timer.clock)
            ),
            details={
                "auto_reassignments": timer.auto_reassign_count,
                "limit": settings.REASSIGN_LIMIT_PER_STATE,
            },
        )
        outbox.add(
            [
                _tell_manager(
                    lead,
                    timer,
                    now,
                    MessageKind.LIMIT_REACHED,
                    f"limit:{timer.episode}:{lead.state}",
                    managers,
                    {"auto_reassignments": timer.auto_reassign_count},
                )
            ]
        )
    timer.stage = Stage.REASSIGNED
    timer.next_fire_at = None
    timer.save(update_fields=["stage", "next_fire_at", "limit_reached_at"])


def _no_candidate(nobody, now, correlation_id, managers) -> None:
    """Nobody can take these leads now: audit and tell the manager once per timer, and look
    again later without repeating either."""
    if not nobody:
        return
    first = [(t, s) for t, s in nobody if t.no_candidate_at is None]
    log.record_many(
        [
            log.build_values(
                AuditKind.REASSIGN_NO_CANDIDATE,
                timer=t,
                actor=SYSTEM,
                occurred_at=now,
                stage_due_at=t.reassign_at,
                correlation_id=correlation_id,
                elapsed=_elapsed(t, now),
                details={"cause": ReassignmentCause.SLA, "candidates": s.considered},
            )
            for t, s in first
        ]
    )
    outbox.add(
        [
            _tell_manager(
                t.lead,
                t,
                now,
                MessageKind.NO_CANDIDATE,
                f"timer:{t.pk}:no_candidate:{Persona.MANAGER}",
                managers,
                {"candidates": s.considered},
            )
            for t, s in first
        ]
    )
    if first:
        SlaTimer.objects.filter(pk__in=[t.pk for t, _ in first]).update(no_candidate_at=now)
    SlaTimer.objects.filter(pk__in=[t.pk for t, _ in nobody]).update(
        next_fire_at=now + NO_CANDIDATE_RETRY
    )


def _elapsed(timer: SlaTimer | None, now: datetime) -> timedelta | None:
    """Business time the lead's timer had used by `now` (for the audit)."""
    if timer is None:
        return None
    return timers.planning.business_elapsed(
        timer, now, timers.planning.calendar_for(timer.lead, timer.clock)
    )


def resume_due_holds(*, now: datetime, limit: int = 500) -> int:
    """The sweep's job for held leads without an open timer (no policy matched) whose resume
    time has come; a held lead with a timer is resumed through it (`resume_paused`). Served
    by the partial index `lead_hold_due`."""
    running = SlaTimer.objects.filter(lead=OuterRef("pk"), completed_at__isnull=True)
    due = (
        Lead.objects.filter(on_hold=True, hold_until__lte=now)
        .exclude(Exists(running))
        .order_by("hold_until")
        .values_list("pk", flat=True)[:limit]
    )
    resumed = 0
    for lead_id in list(due):
        with transaction.atomic():
            lead = _lock_lead(Lead(pk=lead_id), skip_locked=True)
            if lead is None or not lead.on_hold or not lead.hold_until or lead.hold_until > now:
                continue  # a user is changing it, or it moved on since
            lifecycle.resume(lead, actor=None, reason="resume time reached")
            resumed += 1
    return resumed


def resume_paused(timer: SlaTimer, *, now: datetime) -> int:
    """The sweep's job for a held lead whose resume time has come."""
    lead = _lock_lead(timer.lead, skip_locked=True)
    if lead is None:
        timer.next_fire_at = now + LOCKED_RETRY
        timer.save(update_fields=["next_fire_at"])
        return 0
    if lead.on_hold:
        lifecycle.resume(lead, actor=None, reason="resume time reached")
    else:
        timers.resume_timer(timer, now=now, actor=SYSTEM, reason="resume time reached")
    return 1


def route_new_lead(lead: Lead, *, now: datetime, actor=None) -> Rep | None:
    """A lead created without an owner goes to an available rep of its team; if there is none
    it stays unowned and the team's manager is told."""
    who = resolve_actor(actor)
    search = find_candidate(lead, now)
    if search.chosen is None:
        log.record(
            AuditKind.REASSIGN_NO_CANDIDATE,
            lead=lead,
            actor=who,
            occurred_at=now,
            elapsed=timedelta(0),  # routed as it is created: its SLA starts now
            details={"cause": "routing", "candidates": search.considered},
        )
        outbox.add(
            [
                _tell_manager(
                    lead,
                    None,
                    now,
                    MessageKind.UNASSIGNED,
                    f"lead:{lead.pk}:unassigned",
                    context={"candidates": search.considered},
                )
            ]
        )
        return None
    rep = search.chosen
    _save_owner(lead, rep, who, f"assigned to {rep} (routing)")
    Rep.objects.filter(pk=rep.pk).update(last_assigned_at=now)
    log.record(
        AuditKind.LEAD_ASSIGNED,
        lead=lead,
        owner=rep,
        actor=who,
        occurred_at=now,
        details={
            "cause": "routing",
            "to_rep_id": rep.pk,
            "to_rep": rep.name,
            "candidates": search.considered,
        },
    )
    return rep


def revert_reassignment(
    reassignment: Reassignment, *, actor, reason: str, now: datetime | None = None
) -> Reassignment:
    """Give the lead back to its previous owner with a fresh window (team lead, manager or ops
    manager only). Refused when already reverted or when the lead has moved on since."""
    reason = (reason or "").strip()
    if not reason:
        raise ReassignError("Say why the reassignment is reverted.")
    check_can_revert(actor, reassignment.lead)
    who = resolve_actor(actor)
    now = now or timezone.now()
    with transaction.atomic():
        current = Reassignment.objects.select_for_update().get(pk=reassignment.pk)
        if current.reverted_at is not None:
            raise ReassignError(
                f"Already reverted by {current.reverted_by_name or 'someone'} "
                f"on {current.reverted_at:%Y-%m-%d %H:%M} UTC."
            )
        lead = _lock_lead(current.lead)
        if lead.owner_id != current.to_rep_id:
            raise ReassignError(
                f"The lead has moved on since: it is now owned by {lead.owner or 'nobody'}, "
                f"not {current.to_rep}. Reassign it by hand if needed."
            )
        if lead.is_closed:
            raise ReassignError(f"The lead is {lead.state}; there is nothing to give back.")
        restored = current.from_rep
        if restored is None:
            raise ReassignError("The lead had no owner before; there is nobody to give it back to.")
        if not restored.active:
            raise ReassignError(f"{restored} is inactive and cannot get the lead back.")
        timer = timers.open_timer(lead)
        _save_owner(lead, restored, who, f"reassignment reverted: {reason}")
        current.reverted_at, current.reverted_by = now, who.user
        current.reverted_by_name, current.revert_reason = who.name[:150], reason[:300]
        current.save(
            update_fields=["reverted_at", "reverted_by", "reverted_by_name", "revert_reason"]
        )
        episode_kwargs = {}
        if timer is not None:
            episode_kwargs = {
                "episode": timer.episode,
                "episode_owner_ids": timer.episode_owner_ids,
                "auto_reassign_count": timer.auto_reassign_count,
            }
            timers.complete_timer(timer, now=now, outcome=Outcome.REASSIGNED, actor=who)
        new_timer = timers.start_timer(lead, now=now, actor=who, **episode_kwargs)
        log.record(
            AuditKind.REASSIGNMENT_REVERTED,
            lead=lead,
            timer=timer,
            owner=restored,
            actor=who,
            occurred_at=now,
            details={
                "reassignment_id": current.pk,
                "reason": reason,
                "restored_rep_id": restored.pk,
                "restored_rep": restored.name,
                "taken_from_rep_id": current.to_rep_id,
                "taken_from_rep": current.to_rep.name,
                "policy_version": current.policy_version,
                "new_timer_id": new_timer.pk if new_timer else None,
            },
        )
        # The restored owner hears it is theirs again; the rep it is taken from hears too.
        outbox.add(
            [
                outbox.message(
                    key=f"revert:{current.pk}:{Persona.OWNER}",
                    kind=MessageKind.REVERTED,
                    persona=Persona.OWNER,
                    lead=lead,
                    now=now,
                    recipient=restored,
                    timer=new_timer,
                    context={"reassignment_id": current.pk, "reason": reason, "restored": True},
                ),
                outbox.message(
                    key=f"revert:{current.pk}:{Persona.OLD_OWNER}",
                    kind=MessageKind.REVERTED,
                    persona=Persona.OLD_OWNER,
                    lead=lead,
                    now=now,
                    recipient=current.to_rep,
                    timer=new_timer,
                    context={"reassignment_id": current.pk, "reason": reason, "restored": False},
                ),
            ]
        )
    reassignment.refresh_from_db()
    return current


@dataclass
class HandOver:
    reassigned: int = 0
    unassigned: int = 0


def deactivate_rep(rep: Rep, *, actor, now: datetime | None = None) -> HandOver:
    """Make a rep inactive and hand their open leads over by the same rules (cause
    `rep_inactive`); a lead nobody can take becomes unowned and the manager is told."""
    who = resolve_actor(actor)
    now = now or timezone.now()
    with transaction.atomic():
        rep = Rep.objects.select_for_update().get(pk=rep.pk)
        if rep.active:
            rep.active = False
            rep._history_user = who.user
            rep._change_reason = "made inactive"
            rep.save(update_fields=["active"])
    result = HandOver()
    lead_ids = list(
        Lead.objects.filter(owner=rep, state__in=list(OPEN_STATES)).values_list("pk", flat=True)
    )
    for lead_id in lead_ids:
        with transaction.atomic():
            lead = _lock_lead(Lead(pk=lead_id))
            if lead is None or lead.owner_id != rep.pk or lead.is_closed:
                continue
            search = find_candidate(lead, now)
            if search.chosen is not None:
                reassign_lead(
                    lead,
                    search.chosen,
                    cause=ReassignmentCause.REP_INACTIVE,
                    actor=who,
                    now=now,
                    search=search,
                )
                result.reassigned += 1
                continue
            _save_owner(lead, None, who, f"{rep} made inactive; nobody available")
            timer = timers.open_timer(lead)
            log.record(
                AuditKind.REASSIGN_NO_CANDIDATE,
                lead=lead,
                timer=timer,
                owner=rep,
                actor=who,
                occurred_at=now,
                elapsed=_elapsed(timer, now),
                details={"cause": ReassignmentCause.REP_INACTIVE, "candidates": search.considered},
            )
            outbox.add(
                [
                    _tell_manager(
                        lead,
                        timer,
                        now,
                        MessageKind.NO_CANDIDATE,
                        f"inactive:{rep.pk}:{lead.pk}:{now.isoformat()}",
                        context={
                            "cause": ReassignmentCause.REP_INACTIVE,
                            "candidates": search.considered,
                        },
                    )
                ]
            )
            result.unassigned += 1
    return result
