"""Reassignment with the safeguards of SPEC §7: team boundary, availability (working hours,
time off, capacity), fair pick, no capacity overshoot under concurrent sweeps, earlier owners
avoided, a limit per lead and state, the no-candidate path; and the team lead's revert."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations import outbox, timers
from escalations.models import (
    MessageKind,
    Outcome,
    Persona,
    Reassignment,
    ReassignmentCause,
    SlaTimer,
    Stage,
)
from escalations.permissions import check_can_revert
from leadops.actors import SYSTEM, Actor, resolve_actor
from leadops.models import Lead
from teams.availability import Unavailable, open_lead_counts, reps_on_time_off, unavailability
from teams.models import Rep, Role

NO_CANDIDATE_RETRY = timedelta(minutes=10)
LOCKED_RETRY = timedelta(minutes=1)


class ReassignError(Exception):
    """A reassignment or revert that cannot be done; the message says why."""


@dataclass
class CandidateSearch:
    chosen: Rep | None
    considered: list[dict] = field(default_factory=list)

    def reasons(self) -> dict[int, str | None]:
        return {entry["rep_id"]: entry["reason"] for entry in self.considered}


def _entry(rep: Rep, reason: str | None, load: int | None = None) -> dict:
    return {
        "rep_id": rep.pk,
        "name": rep.name,
        "team": rep.team.slug,
        "load": load,
        "capacity": rep.capacity,
        "reason": reason,
        "label": Unavailable.LABELS.get(reason, "chosen") if reason else "chosen",
    }


def find_candidate(
    lead: Lead, now: datetime, *, previous_owner_ids=(), exclude_ids=(), lock: bool = True
) -> CandidateSearch:
    """Choose a rep for `lead` and say, for every rep considered, why the others were passed
    over. Considered: the reps of the lead's team, plus the current and earlier owners of the
    episode wherever they are now (a rep who moved to another team is passed over as
    `other_team`: team and market scope are never crossed). With `lock`, the eligible reps'
    rows are locked (in id order: no deadlocks) and their load counted after the lock, so
    concurrent sweeps cannot push a rep over capacity."""
    from django.db.models import Q

    known = {*previous_owner_ids, *([lead.owner_id] if lead.owner_id else [])}
    pool = list(
        Rep.objects.filter(Q(team_id=lead.team_id) | Q(pk__in=known))
        .select_related("team__market")
        .order_by("pk")
    )
    on_pto = reps_on_time_off([r.pk for r in pool if r.team_id == lead.team_id], now)
    considered: dict[int, dict] = {}
    eligible: list[Rep] = []
    for rep in pool:
        if rep.team_id != lead.team_id:
            reason = Unavailable.OTHER_TEAM
        elif rep.role == Role.MANAGER:
            reason = Unavailable.MANAGER
        elif not rep.active:
            reason = Unavailable.INACTIVE
        elif rep.pk == lead.owner_id or rep.pk in exclude_ids:
            reason = Unavailable.CURRENT_OWNER
        else:
            reason = unavailability(rep, now, on_time_off=on_pto)
        considered[rep.pk] = _entry(rep, reason)
        if reason is None:
            eligible.append(rep)
    if eligible and lock:
        locked = (
            Rep.objects.select_for_update()
            .filter(pk__in=[r.pk for r in eligible], active=True)
            .order_by("pk")
        )
        locked_ids = set(locked.values_list("pk", flat=True))
        for rep in eligible:
            if rep.pk not in locked_ids:
                considered[rep.pk] = _entry(rep, Unavailable.INACTIVE)
        eligible = [r for r in eligible if r.pk in locked_ids]
    loads = open_lead_counts([r.pk for r in eligible]) if eligible else {}
    under_capacity = []
    for rep in eligible:
        load = loads.get(rep.pk, 0)
        if load >= rep.capacity:
            considered[rep.pk] = _entry(rep, Unavailable.AT_CAPACITY, load)
        else:
            considered[rep.pk] = _entry(rep, None, load)
            under_capacity.append(rep)
    previous = set(previous_owner_ids)
    fresh = [r for r in under_capacity if r.pk not in previous]
    if fresh:
        for rep in under_capacity:
            if rep.pk in previous:
                considered[rep.pk] = _entry(rep, Unavailable.PREVIOUS_OWNER, loads.get(rep.pk, 0))
        under_capacity = fresh
    # Fair pick: least loaded, then the one assigned longest ago (never assigned first).
    chosen = min(
        under_capacity,
        key=lambda r: (
            loads.get(r.pk, 0),
            r.last_assigned_at is not None,
            r.last_assigned_at or now,
            r.pk,
        ),
        default=None,
    )
    entries = list(considered.values())
    for entry in entries:
        if entry["reason"] is None and (chosen is None or entry["rep_id"] != chosen.pk):
            entry["reason"], entry["label"] = "not_picked", "another rep was less loaded"
        entry["chosen"] = chosen is not None and entry["rep_id"] == chosen.pk
    return CandidateSearch(chosen=chosen, considered=entries)


def _lock_lead(lead: Lead, *, skip_locked: bool = False) -> Lead | None:
    qs = Lead.objects.select_for_update(skip_locked=skip_locked, of=("self",)).select_related(
        "market", "source", "team", "owner__team__market"
    )
    return qs.filter(pk=lead.pk).first()


def _save_owner(lead: Lead, rep: Rep | None, actor: Actor, reason: str) -> None:
    lead.owner = rep
    lead._history_user = actor.user
    lead._change_reason = reason[:100]
    lead.save(update_fields=["owner", "updated_at"])


def _reassignment_messages(lead, reassignment, timer, now, *, kind_from, kind_to, key) -> list:
    context = {
        "reassignment_id": reassignment.pk,
        "cause": reassignment.cause,
        "from_rep_id": reassignment.from_rep_id,
        "to_rep_id": reassignment.to_rep_id,
        "state": lead.state,
        "at": now.isoformat(),
    }
    rows = []
    if reassignment.from_rep_id:
        rows.append(
            outbox.message(
                key=f"{key}:{Persona.OLD_OWNER}",
                kind=kind_from,
                persona=Persona.OLD_OWNER,
                lead=lead,
                now=now,
                recipient=reassignment.from_rep,
                timer=timer,
                stage=Stage.REASSIGNED,
                context=context,
            )
        )
    rows.append(
        outbox.message(
            key=f"{key}:{Persona.NEW_OWNER}",
            kind=kind_to,
            persona=Persona.NEW_OWNER,
            lead=lead,
            now=now,
            recipient=reassignment.to_rep,
            timer=timer,
            stage=Stage.REASSIGNED,
            context=context,
        )
    )
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
        if lead.owner_id == to_rep.pk:
            raise ReassignError(f"{to_rep} already owns this lead")
        if to_rep.team_id != lead.team_id:
            raise ReassignError(f"{to_rep} is not on team {lead.team.slug}")
        if not to_rep.active:
            raise ReassignError(f"{to_rep} is inactive")
        if lead.is_closed:
            raise ReassignError(f"the lead is {lead.state}; closed leads are not reassigned")
        from_rep = lead.owner if lead.owner_id else None
        timer = timer or timers.open_timer(lead)
        _save_owner(
            lead, to_rep, who, f"reassigned ({cause}) from {from_rep or 'nobody'} to {to_rep}"
        )
        Rep.objects.filter(pk=to_rep.pk).update(last_assigned_at=now)
        to_rep.last_assigned_at = now
        reassignment = Reassignment.objects.create(
            lead=lead,
            timer=timer,
            state=lead.state,
            from_rep=from_rep,
            to_rep=to_rep,
            cause=cause,
            policy_id_used=timer.policy_id if timer else None,
            policy_version=timer.policy_version if timer else None,
            at=now,
            actor_user=who.user,
            actor_name=who.name[:150],
            candidates=search.considered if search else [],
        )
        episode_kwargs = {}
        if timer is not None:
            auto = 1 if cause == ReassignmentCause.SLA else 0
            episode_kwargs = {
                "episode": timer.episode,
                "episode_owner_ids": sorted(
                    {*timer.episode_owner_ids, *([from_rep.pk] if from_rep else [])}
                ),
                "auto_reassign_count": timer.auto_reassign_count + auto,
            }
            elapsed = timers.planning.business_elapsed(
                timer, now, timers.planning.calendar_for(lead, timer.clock)
            )
            if cause == ReassignmentCause.SLA:
                timer.stage = Stage.REASSIGNED
                timer.save(update_fields=["stage"])
            timers.complete_timer(timer, now=now, outcome=Outcome.REASSIGNED, actor=who)
        new_timer = timers.start_timer(lead, now=now, actor=who, **episode_kwargs)
        kind = (
            AuditKind.SLA_BREACH_AUTO_REASSIGN
            if cause == ReassignmentCause.SLA
            else AuditKind.LEAD_ASSIGNED
        )
        log.record(
            kind,
            lead=lead,
            timer=timer,
            owner=from_rep,
            actor=who,
            occurred_at=now,
            correlation_id=correlation_id,
            stage_due_at=timer.reassign_at if timer else None,
            elapsed=elapsed if timer else None,
            details={
                "reassignment_id": reassignment.pk,
                "cause": cause,
                "from_rep_id": from_rep.pk if from_rep else None,
                "from_rep": from_rep.name if from_rep else None,
                "to_rep_id": to_rep.pk,
                "to_rep": to_rep.name,
                "rule_version": {
                    "policy_version": reassignment.policy_version,
                    "thresholds_version": (timer.thresholds or {}).get("version")
                    if timer
                    else None,
                },
                "new_timer_id": new_timer.pk if new_timer else None,
                "candidates": reassignment.candidates,
            },
        )
        key = f"reassign:{reassignment.pk}"
        rows = _reassignment_messages(
            lead,
            reassignment,
            timer,
            now,
            kind_from=MessageKind.REASSIGNED_FROM,
            kind_to=MessageKind.REASSIGNED_TO,
            key=key,
        )
        rows.append(
            outbox.message(
                key=f"{key}:{Persona.MANAGER}",
                kind=MessageKind.REASSIGNED_TEAM,
                persona=Persona.MANAGER,
                lead=lead,
                now=now,
                timer=timer,
                stage=Stage.REASSIGNED,
                recipient=_manager(lead.team_id),
                context={
                    "reassignment_id": reassignment.pk,
                    "cause": cause,
                    "from_rep_id": reassignment.from_rep_id,
                    "to_rep_id": to_rep.pk,
                },
            )
        )
        outbox.add(rows)
    return reassignment


def _manager(team_id: int, managers: dict | None = None) -> Rep | None:
    if managers is not None and team_id in managers:
        return managers[team_id]
    return Rep.objects.filter(team_id=team_id, role=Role.MANAGER, active=True).first()


def _tell_manager(lead, timer, now, kind, key, managers=None, context=None) -> None:
    outbox.add(
        [
            outbox.message(
                key=key,
                kind=kind,
                persona=Persona.MANAGER,
                lead=lead,
                now=now,
                timer=timer,
                stage=Stage.REASSIGNED if timer else "",
                recipient=_manager(lead.team_id, managers),
                context=context or {},
            )
        ]
    )


def reassign_for_sla(
    timer: SlaTimer, *, now: datetime, correlation_id: str = "", managers: dict | None = None
) -> str:
    """The sweep's 150 % stage for one timer (the caller holds the timer's row lock).
    Returns "reassigned", "no_candidate", "limit_reached" or "locked"."""
    lead = _lock_lead(timer.lead, skip_locked=True)
    if lead is None:  # a user is changing this lead right now: look again in a minute
        timer.next_fire_at = now + LOCKED_RETRY
        timer.save(update_fields=["next_fire_at"])
        return "locked"
    timer.lead = lead
    if timer.auto_reassign_count >= settings.REASSIGN_LIMIT_PER_STATE:
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
            _tell_manager(
                lead,
                timer,
                now,
                MessageKind.LIMIT_REACHED,
                f"limit:{timer.episode}:{lead.state}",
                managers,
                {"auto_reassignments": timer.auto_reassign_count},
            )
        timer.stage = Stage.REASSIGNED
        timer.next_fire_at = None
        timer.save(update_fields=["stage", "next_fire_at", "limit_reached_at"])
        return "limit_reached"
    search = find_candidate(lead, now, previous_owner_ids=timer.episode_owner_ids)
    if search.chosen is None:
        if timer.no_candidate_at is None:
            timer.no_candidate_at = now
            log.record(
                AuditKind.REASSIGN_NO_CANDIDATE,
                timer=timer,
                actor=SYSTEM,
                occurred_at=now,
                stage_due_at=timer.reassign_at,
                correlation_id=correlation_id,
                details={"cause": ReassignmentCause.SLA, "candidates": search.considered},
            )
            _tell_manager(
                lead,
                timer,
                now,
                MessageKind.NO_CANDIDATE,
                f"timer:{timer.pk}:no_candidate:{Persona.MANAGER}",
                managers,
                {"candidates": search.considered},
            )
        timer.next_fire_at = now + NO_CANDIDATE_RETRY
        timer.save(update_fields=["next_fire_at", "no_candidate_at"])
        return "no_candidate"
    reassign_lead(
        lead,
        search.chosen,
        cause=ReassignmentCause.SLA,
        actor=SYSTEM,
        now=now,
        timer=timer,
        search=search,
        correlation_id=correlation_id,
    )
    return "reassigned"


def resume_paused(timer: SlaTimer, *, now: datetime) -> int:
    """The sweep's job for a held lead whose resume time has come."""
    from leadops import lifecycle

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
            details={"cause": "routing", "candidates": search.considered},
        )
        _tell_manager(
            lead,
            None,
            now,
            MessageKind.UNASSIGNED,
            f"lead:{lead.pk}:unassigned",
            context={"candidates": search.considered},
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
    from leadops.models import OPEN_STATES

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
                details={"cause": ReassignmentCause.REP_INACTIVE, "candidates": search.considered},
            )
            _tell_manager(
                lead,
                timer,
                now,
                MessageKind.NO_CANDIDATE,
                f"inactive:{rep.pk}:{lead.pk}:{now.isoformat()}",
                context={"cause": ReassignmentCause.REP_INACTIVE, "candidates": search.considered},
            )
            result.unassigned += 1
    return result
