"""The escalation sweep (SPEC §6): find due timers by `next_fire_at`, claim them safely against
concurrent sweeps, fire each crossed stage once and in order, with its audit event and outbox
rows in the same transaction.

Warn and breach stages are batched (one SELECT … FOR UPDATE SKIP LOCKED, one UPDATE, one INSERT
of audit rows and one of outbox rows per batch). The reassign stage, rarer and heavier, runs per
lead in a savepoint so that one lead's failure does not undo the batch."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations import outbox, planning
from escalations.models import MessageKind, Persona, SlaTimer, Stage
from escalations.timers import supersede_stage_messages
from leadops.actors import SYSTEM
from teams.models import Rep, Role

logger = logging.getLogger(__name__)

STAGE_AUDIT = {Stage.WARNED: AuditKind.SLA_WARNING, Stage.BREACHED: AuditKind.SLA_BREACH}
STAGE_MESSAGE = {Stage.WARNED: MessageKind.WARNING, Stage.BREACHED: MessageKind.BREACH}


@dataclass
class SweepResult:
    claimed: int = 0
    warned: int = 0
    breached: int = 0
    reassigned: int = 0
    no_candidate: int = 0
    limit_reached: int = 0
    superseded: int = 0
    resumed: int = 0
    skipped_locked: int = 0
    errors: int = 0
    batches: int = 0

    def summary(self) -> str:
        return (
            f"sweep: {self.warned} warned, {self.breached} breached, {self.reassigned} reassigned "
            f"({self.no_candidate} without candidate, {self.limit_reached} at limit), "
            f"{self.superseded} superseded, {self.resumed} resumed, {self.errors} errors; "
            f"{self.claimed} timers in {self.batches} batches"
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def run_sweep(
    now: datetime | None = None, batch_size: int | None = None, max_batches: int | None = None
) -> SweepResult:
    """Fire everything due at `now` (default: the current time). Safe to run concurrently."""
    now = now or timezone.now()
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    max_batches = max_batches or settings.SWEEP_MAX_BATCHES
    result = SweepResult()
    correlation_id = f"sweep-{uuid.uuid4().hex[:12]}"
    for _ in range(max_batches):
        with transaction.atomic():
            batch = _claim(now, batch_size)
            if not batch:
                break
            result.batches += 1
            result.claimed += len(batch)
            _process_batch(batch, now, result, correlation_id)
        if len(batch) < batch_size:
            break
    if result.claimed:
        logger.info("%s [%s]", result.summary(), correlation_id)
    return result


def _claim(now: datetime, batch_size: int) -> list[SlaTimer]:
    qs = (
        SlaTimer.objects.filter(completed_at__isnull=True, next_fire_at__lte=now)
        .order_by("next_fire_at")
        .select_related("lead__market", "lead__source", "lead__team", "lead__owner__team__market")
    )
    if connection.features.has_select_for_update_skip_locked:
        # Another sweep's rows are skipped, not waited for: no stage is fired twice and no
        # sweep blocks another. (SQLite has one writer at a time, so the transaction suffices.)
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs[:batch_size])


def _crossed(timer: SlaTimer, now: datetime) -> list[str]:
    crossed = []
    stage = timer.stage
    while (following := planning.next_stage(stage)) is not None:
        if getattr(timer, planning.STAGE_INSTANT[following]) > now:
            break
        crossed.append(following)
        stage = following
    return crossed


def _managers_by_team(team_ids) -> dict[int, Rep]:
    managers = Rep.objects.filter(team_id__in=team_ids, role=Role.MANAGER, active=True)
    return {rep.team_id: rep for rep in managers}


def _process_batch(batch, now, result: SweepResult, correlation_id: str) -> None:
    from escalations import reassign

    managers = _managers_by_team({t.lead.team_id for t in batch})
    events, messages, changed, overtaken, per_lead = [], [], [], [], []
    for timer in batch:
        if timer.paused_at is not None:
            per_lead.append((timer, "resume"))
            continue
        original_stage = timer.stage
        try:
            fired = _fire(timer, now, managers, correlation_id)
        except Exception as exc:  # one lead's failure must not stop the batch
            timer.stage = original_stage
            _note_error(timer, now, exc, result)
        else:
            for stage, event, message in fired:
                events.append(event)
                messages.append(message)
                result.superseded += event.details["superseded"]
                if stage == Stage.WARNED:
                    result.warned += 1
                else:
                    result.breached += 1
                    overtaken.append(timer.pk)
            if timer.stage == Stage.BREACHED and timer.reassign_at <= now:
                per_lead.append((timer, "reassign"))
                overtaken.append(timer.pk)
        changed.append(timer)
    SlaTimer.objects.bulk_update(
        changed, ["stage", "next_fire_at", "error_count", "last_error"], batch_size=1000
    )
    if overtaken:
        supersede_stage_messages(overtaken)
    log.record_many(events)
    outbox.add(messages)

    for timer, action in per_lead:
        try:
            with transaction.atomic():
                if action == "resume":
                    done = reassign.resume_paused(timer, now=now)
                    result.resumed += done
                else:
                    outcome = reassign.reassign_for_sla(
                        timer, now=now, correlation_id=correlation_id, managers=managers
                    )
                    result.reassigned += outcome == "reassigned"
                    result.no_candidate += outcome == "no_candidate"
                    result.limit_reached += outcome == "limit_reached"
                    result.skipped_locked += outcome == "locked"
        except Exception as exc:
            _note_error(timer, now, exc, result)
            SlaTimer.objects.filter(pk=timer.pk).update(
                next_fire_at=timer.next_fire_at,
                error_count=timer.error_count,
                last_error=timer.last_error,
            )


def _fire(timer, now, managers, correlation_id) -> list[tuple[str, object, object]]:
    """Advance one timer through every warn/breach stage whose instant has passed (in memory);
    returns (stage, audit event, outbox row) for each. The reassign stage is left to the
    per-lead pass. Raises without side effects if anything goes wrong."""
    crossed = _crossed(timer, now)
    fired = [stage for stage in crossed if stage != Stage.REASSIGNED]
    out = []
    if fired:
        calendar = planning.calendar_for(timer.lead, timer.clock)
        elapsed = planning.business_elapsed(timer, now, calendar)
    for stage in fired:
        superseded = stage != crossed[-1]  # a later stage's instant has passed too
        due = getattr(timer, planning.STAGE_INSTANT[stage])
        timer.stage = stage
        event = log.build(
            STAGE_AUDIT[stage],
            timer=timer,
            lead=timer.lead,
            owner=timer.lead.owner,
            actor=SYSTEM,
            occurred_at=now,
            stage_due_at=due,
            elapsed=elapsed,
            correlation_id=correlation_id,
            details={
                "fired_at": now.isoformat(),
                "late_by_seconds": int((now - due).total_seconds()),
                "superseded": superseded,
            },
        )
        out.append(
            (stage, event, _stage_message(timer, stage, due, now, elapsed, managers, superseded))
        )
    timer.next_fire_at = planning.next_fire_at(timer)
    if (
        timer.next_fire_at is not None
        and timer.next_fire_at <= now
        and Stage.REASSIGNED not in crossed
    ):
        raise RuntimeError(f"timer {timer.pk} would be due again at once")
    return out


def _stage_message(timer, stage, due, now, elapsed, managers, superseded):
    lead = timer.lead
    if stage == Stage.WARNED and lead.owner_id:
        persona, recipient = Persona.OWNER, lead.owner
    else:  # the breach, or a warning about a lead nobody owns, goes to the manager
        persona, recipient = Persona.MANAGER, managers.get(lead.team_id)
    return outbox.message(
        key=outbox.stage_key(timer, stage, persona),
        kind=STAGE_MESSAGE[stage],
        persona=persona,
        lead=lead,
        now=now,
        recipient=recipient,
        timer=timer,
        stage=stage,
        superseded=superseded,
        context={
            "stage": stage,
            "fired_at": now.isoformat(),
            "stage_due_at": due.isoformat(),
            "due_at": timer.due_at.isoformat(),
            "elapsed_seconds": int(elapsed.total_seconds()),
            "window": timer.window,
            "state": timer.state,
            "policy_version": timer.policy_version,
            "owner_id": lead.owner_id,
        },
    )


def _note_error(timer: SlaTimer, now: datetime, exc: Exception, result: SweepResult) -> None:
    logger.exception("sweep failed on timer %s (lead %s)", timer.pk, timer.lead_id)
    result.errors += 1
    timer.error_count += 1
    timer.last_error = f"{now.isoformat()} {type(exc).__name__}: {exc}"[:2000]
    # Pushed forward, so one bad lead cannot crash-loop the sweep.
    backoff = timedelta(minutes=settings.SWEEP_ERROR_BACKOFF_MINUTES * min(timer.error_count, 8))
    timer.next_fire_at = now + backoff
