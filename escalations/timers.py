"""SLA timers: started, completed, paused, resumed and re-planned as the lead moves (SPEC §4, §6).

`on_lead_change` is the lifecycle's single hook; everything here runs inside the caller's
transaction, with the lead row already locked by the lifecycle verb."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations import planning
from escalations.models import (
    Clock,
    MessageKind,
    Notification,
    NotificationStatus,
    Outcome,
    SlaPolicy,
    SlaTimer,
)
from escalations.policies import Resolved, current_thresholds, resolve_for_lead
from escalations.windows import parse_window
from leadops.actors import SYSTEM, Actor, resolve_actor
from leadops.models import OPEN_STATES, Lead

# Messages that lose their point once the timer is over (a held warning, a breach notice).
STAGE_MESSAGE_KINDS = (MessageKind.WARNING, MessageKind.BREACH)


def open_timer(lead: Lead, *, lock: bool = True) -> SlaTimer | None:
    qs = SlaTimer.objects.filter(lead_id=lead.pk, completed_at__isnull=True)
    if lock:
        qs = qs.select_for_update()
    timer = qs.first()
    if timer is not None:
        timer.lead = lead
    return timer


def plan_timer(
    lead: Lead,
    resolved: Resolved,
    thresholds: dict,
    *,
    now: datetime,
    episode: uuid.UUID | None = None,
    episode_owner_ids: list[int] | None = None,
    auto_reassign_count: int = 0,
) -> SlaTimer:
    """An unsaved timer for the lead's current state under `resolved`, planned from `now`."""
    policy = resolved.policy
    calendar = planning.calendar_for(lead, policy.clock)
    window_business = planning.window_business_time(now, parse_window(policy.window), calendar)
    plan = planning.plan_instants(
        calendar,
        running_since=now,
        consumed=timedelta(0),
        window_business=window_business,
        thresholds=thresholds,
    )
    timer = SlaTimer(
        lead=lead,
        state=lead.state,
        owner_id=lead.owner_id,
        policy=policy,
        policy_version=resolved.version,
        window=policy.window,
        clock=policy.clock,
        thresholds=thresholds,
        window_business=window_business,
        started_at=now,
        running_since=now,
        warn_at=plan.warn_at,
        due_at=plan.due_at,
        reassign_at=plan.reassign_at,
        episode=episode or uuid.uuid4(),
        episode_owner_ids=list(episode_owner_ids or []),
        auto_reassign_count=auto_reassign_count,
        created_at=now,
    )
    if lead.on_hold:
        # SPEC §6: a held lead keeps its pause through every timer change (reassignment,
        # revert, policy deactivation, hand-over): the new window starts paused and resumes
        # with the hold (its resume time, `resume`, or progress). Every new timer is planned
        # here, so no path can restart a held lead's clock.
        timer.paused_at = now
        timer.resume_at = lead.hold_until
    timer.next_fire_at = planning.next_fire_at(timer)
    return timer


def hold_carried_events(new_timers, *, actor: Actor, now: datetime) -> list[dict]:
    """`sla_paused` for each saved new timer that starts paused because its lead is on hold."""
    return [
        log.build_values(
            AuditKind.SLA_PAUSED,
            timer=timer,
            actor=actor,
            occurred_at=now,
            elapsed=timer.consumed,
            details={
                "reason": timer.lead.hold_reason,
                "resume_at": timer.resume_at.isoformat() if timer.resume_at else None,
                "carried_over": True,
            },
        )
        for timer in new_timers
        if timer.paused_at is not None
    ]


def start_timer(
    lead: Lead,
    *,
    now: datetime,
    actor: Actor = SYSTEM,
    resolved: Resolved | None = None,
    episode: uuid.UUID | None = None,
    episode_owner_ids: list[int] | None = None,
    auto_reassign_count: int = 0,
) -> SlaTimer | None:
    """Start the timer for the lead's current state, if a policy matches (else: no SLA)."""
    if lead.state not in OPEN_STATES:
        return None
    resolved = resolved or resolve_for_lead(lead)
    if resolved is None:
        return None
    timer = plan_timer(
        lead,
        resolved,
        current_thresholds().as_dict(),
        now=now,
        episode=episode,
        episode_owner_ids=episode_owner_ids,
        auto_reassign_count=auto_reassign_count,
    )
    timer.save()
    log.record_many(hold_carried_events([timer], actor=actor, now=now))
    return timer


def supersede_stage_messages(timer_ids, *, persona: str | None = None) -> int:
    """Unsent stage messages of finished or overtaken stages are never sent."""
    qs = Notification.objects.filter(
        timer_id__in=list(timer_ids),
        status=NotificationStatus.PENDING,
        kind__in=STAGE_MESSAGE_KINDS,
    )
    if persona:
        qs = qs.filter(persona=persona)
    return qs.update(status=NotificationStatus.SUPERSEDED)


def complete_timer(
    timer: SlaTimer,
    *,
    now: datetime,
    outcome: str,
    actor: Actor = SYSTEM,
    progress_at: datetime | None = None,
    details: dict | None = None,
) -> None:
    """Finish a timer; met/met_late are judged on business time used when the progress happened."""
    calendar = planning.calendar_for(timer.lead, timer.clock)
    at = progress_at or now
    elapsed = planning.business_elapsed(timer, min(at, now), calendar)
    if outcome in (Outcome.MET, Outcome.MET_LATE):
        outcome = Outcome.MET_LATE if elapsed > timer.window_business else Outcome.MET
    if timer.paused_at is not None:
        timer.paused_total += now - timer.paused_at
        timer.paused_at = None
        timer.resume_at = None
    timer.completed_at = now
    timer.outcome = outcome
    timer.next_fire_at = None
    timer.save(
        update_fields=[
            "completed_at",
            "outcome",
            "next_fire_at",
            "paused_at",
            "resume_at",
            "paused_total",
        ]
    )
    supersede_stage_messages([timer.pk])
    kind = {
        Outcome.MET: AuditKind.SLA_MET,
        Outcome.MET_LATE: AuditKind.SLA_MET,
        Outcome.CANCELLED: AuditKind.SLA_CANCELLED,
    }.get(outcome)
    if kind:
        log.record(
            kind,
            timer=timer,
            actor=actor,
            occurred_at=now,
            elapsed=elapsed,
            stage_due_at=timer.due_at,
            details={
                "outcome": outcome,
                "stage": timer.stage,
                "progress_at": at.isoformat(),
                **(details or {}),
            },
        )


def pause_timer(
    timer: SlaTimer, *, now: datetime, resume_at: datetime | None, actor: Actor, reason: str
) -> None:
    calendar = planning.calendar_for(timer.lead, timer.clock)
    timer.consumed = planning.business_elapsed(timer, now, calendar)
    timer.paused_at = now
    timer.resume_at = resume_at
    timer.next_fire_at = planning.next_fire_at(timer)
    timer.save(update_fields=["consumed", "paused_at", "resume_at", "next_fire_at"])
    log.record(
        AuditKind.SLA_PAUSED,
        timer=timer,
        actor=actor,
        occurred_at=now,
        elapsed=timer.consumed,
        details={"reason": reason, "resume_at": resume_at.isoformat() if resume_at else None},
    )


def resume_timer(timer: SlaTimer, *, now: datetime, actor: Actor, reason: str = "") -> None:
    """Restart the clock with the business time that was left when it paused."""
    if timer.paused_at is None:
        return
    paused_for = now - timer.paused_at
    timer.paused_total += paused_for
    timer.paused_at = None
    timer.resume_at = None
    timer.running_since = now
    _replan(timer, planning.calendar_for(timer.lead, timer.clock))
    timer.save(
        update_fields=[
            "paused_total",
            "paused_at",
            "resume_at",
            "running_since",
            "warn_at",
            "due_at",
            "reassign_at",
            "next_fire_at",
        ]
    )
    log.record(
        AuditKind.SLA_RESUMED,
        timer=timer,
        actor=actor,
        occurred_at=now,
        elapsed=timer.consumed,
        stage_due_at=timer.due_at,
        details={"reason": reason, "paused_seconds": int(paused_for.total_seconds())},
    )


def _replan(timer: SlaTimer, calendar) -> None:
    if timer.paused_at is None:
        plan = planning.plan_instants(
            calendar,
            running_since=timer.running_since,
            consumed=timer.consumed,
            window_business=timer.window_business,
            thresholds=timer.thresholds,
        )
        timer.warn_at, timer.due_at, timer.reassign_at = plan.warn_at, plan.due_at, plan.reassign_at
    timer.next_fire_at = planning.next_fire_at(timer)


def on_lead_change(change) -> None:
    """The lifecycle's hook (leadops.lifecycle._announce)."""
    lead, now, actor = change.lead, change.at, change.actor
    if change.kind == "created":
        # Kept on the new lead for its creator, who answers with its SLA (the API's 201)
        # without looking the timer up again.
        lead.started_timer = start_timer(lead, now=now, actor=actor)
        return
    if change.kind == "held":
        timer = open_timer(lead)
        if timer is not None:
            pause_timer(
                timer, now=now, resume_at=lead.hold_until, actor=actor, reason=change.reason
            )
        else:  # no SLA runs: the hold is audited all the same (the sweep ends it on time)
            _record_hold_without_sla(AuditKind.SLA_PAUSED, lead, now, actor, change.reason)
        return
    if change.kind == "resumed":
        timer = open_timer(lead)
        if timer is not None:
            resume_timer(timer, now=now, actor=actor, reason=change.reason)
        else:
            _record_hold_without_sla(AuditKind.SLA_RESUMED, lead, now, actor, change.reason)
        return
    if change.kind != "state_changed":
        raise ValueError(f"unknown lead change {change.kind!r}")
    timer = open_timer(lead)
    if change.progress:
        log.record(
            AuditKind.PROGRESS_RECORDED,
            lead=lead,
            timer=timer,
            actor=actor,
            occurred_at=now,
            details={
                "from_state": change.from_state,
                "to_state": change.to_state,
                "activity_id": change.activity.pk if change.activity else None,
                "activity_kind": change.activity.kind if change.activity else None,
                "progress_at": (change.progress_at or now).isoformat(),
            },
        )
    if timer is not None:
        if timer.paused_at is not None and change.progress:
            resume_timer(timer, now=now, actor=actor, reason="progress")
        if change.progress:
            complete_timer(
                timer, now=now, outcome=Outcome.MET, actor=actor, progress_at=change.progress_at
            )
        else:
            complete_timer(
                timer,
                now=now,
                outcome=Outcome.CANCELLED,
                actor=actor,
                details={
                    "why": f"left {change.from_state} without progress",
                    "to_state": change.to_state,
                },
            )
    start_timer(lead, now=now, actor=actor)


def _record_hold_without_sla(kind: str, lead: Lead, now: datetime, actor, reason: str) -> None:
    log.record(
        kind,
        lead=lead,
        actor=actor,
        occurred_at=now,
        details={
            "reason": reason,
            "resume_at": lead.hold_until.isoformat() if lead.hold_until else None,
            "no_sla": True,
        },
    )


# --- operations on many timers (admin actions, org file, policy and calendar changes) ----------


def replan_to_current_policy(timer: SlaTimer, *, now: datetime, actor, reason: str) -> bool:
    """Re-plan one open timer under the policy that matches now (admin action). Returns whether
    anything changed. Stages already fired stay fired; a shorter window makes stages due now."""
    who = resolve_actor(actor)
    lead = timer.lead
    resolved = resolve_for_lead(lead, timer.state)
    if resolved is None:
        complete_timer(
            timer,
            now=now,
            outcome=Outcome.CANCELLED,
            actor=who,
            details={"why": "no policy matches any more", "reason": reason},
        )
        return True
    if resolved.policy.pk == timer.policy_id and resolved.version == timer.policy_version:
        return False
    old = {"policy_id": timer.policy_id, "version": timer.policy_version, "window": timer.window}
    policy = resolved.policy
    # The time used so far is counted on the clock it ran on; from now on the new one counts.
    timer.consumed = planning.business_elapsed(timer, now, planning.calendar_for(lead, timer.clock))
    calendar = planning.calendar_for(lead, policy.clock)
    if timer.paused_at is None:
        timer.running_since = now
    timer.policy, timer.policy_version = policy, resolved.version
    timer.window, timer.clock = policy.window, policy.clock
    timer.window_business = planning.window_business_time(
        timer.started_at, parse_window(policy.window), calendar
    )
    _replan(timer, calendar)
    timer.save()
    log.record(
        AuditKind.SLA_REPLANNED,
        timer=timer,
        actor=who,
        occurred_at=now,
        elapsed=timer.consumed,
        stage_due_at=timer.due_at,
        details={
            "from": old,
            "to": {"policy_id": policy.pk, "version": resolved.version, "window": policy.window},
            "reason": reason,
        },
    )
    return True


def replan_timers(timers, *, actor, reason: str) -> int:
    """Admin action: re-plan chosen open timers under the current policy versions."""
    changed = 0
    now = timezone.now()
    for timer in timers:
        with transaction.atomic():
            locked = (
                SlaTimer.objects.select_for_update(of=("self",))
                .select_related("lead__market")
                .filter(pk=timer.pk, completed_at__isnull=True)
                .first()
            )
            if locked and replan_to_current_policy(locked, now=now, actor=actor, reason=reason):
                changed += 1
    return changed


def deactivate_policy(policy: SlaPolicy, *, actor, reason: str, chunk: int = 500) -> int:
    """Cancel the open timers of a policy that was switched off, and start the timer of the
    policy that matches now (if any), from now. Returns how many timers were cancelled."""
    who = resolve_actor(actor)
    cancelled = 0
    while True:
        with transaction.atomic():
            ids = list(
                SlaTimer.objects.filter(policy=policy, completed_at__isnull=True).values_list(
                    "pk", flat=True
                )[:chunk]
            )
            if not ids:
                return cancelled
            timers = (
                SlaTimer.objects.select_for_update(of=("self",))
                .select_related("lead__market", "owner")
                .filter(pk__in=ids, completed_at__isnull=True)
            )
            now = timezone.now()
            for timer in timers:
                complete_timer(
                    timer,
                    now=now,
                    outcome=Outcome.CANCELLED,
                    actor=who,
                    details={"why": "policy deactivated", "reason": reason},
                )
                start_timer(timer.lead, now=now, actor=who)
                cancelled += 1


def replan_market(market, *, actor, reason: str, chunk: int = 500) -> int:
    """A market's calendar changed: re-plan its open business-hours timers on the new calendar
    (same policy and version; the business time already used is kept)."""
    who = resolve_actor(actor)
    calendar = planning.calendar_for(Lead(market=market), Clock.BUSINESS)
    now = timezone.now()
    done = 0
    last_id = 0
    while True:
        with transaction.atomic():
            timers = list(
                SlaTimer.objects.select_for_update(of=("self",))
                .select_related("lead")
                .filter(
                    lead__market=market,
                    clock=Clock.BUSINESS,
                    completed_at__isnull=True,
                    pk__gt=last_id,
                )
                .order_by("pk")[:chunk]
            )
            if not timers:
                return done
            for timer in timers:
                window = parse_window(timer.window)
                if window.business_days is not None:
                    timer.window_business = planning.window_business_time(
                        timer.started_at, window, calendar
                    )
                _replan(timer, calendar)
                timer.save(
                    update_fields=[
                        "window_business",
                        "warn_at",
                        "due_at",
                        "reassign_at",
                        "next_fire_at",
                    ]
                )
                log.record(
                    AuditKind.SLA_REPLANNED,
                    timer=timer,
                    actor=who,
                    occurred_at=now,
                    stage_due_at=timer.due_at,
                    details={
                        "why": "market calendar changed",
                        "market": market.code,
                        "reason": reason,
                    },
                )
                done += 1
            last_id = timers[-1].pk
