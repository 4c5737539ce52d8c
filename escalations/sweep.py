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
from django.db.models import F
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations import planning, reassign, sweep_runs
from escalations.models import MessageKind, Persona, SlaTimer, Stage
from escalations.notify import outbox
from escalations.timers import supersede_stage_messages
from leadops.actors import SYSTEM
from leadops.models import Lead, Source
from teams.models import Market, Rep, Team

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
    errors: int = 0  # every exception caught, a failed batch included even if its retry worked
    fallbacks: int = 0  # batched reassignments that failed and were retried lead by lead
    batches: int = 0
    correlation_id: str = ""  # the audit events of this run carry it

    def summary(self) -> str:
        # "reassigned" counts the leads that got a new owner; the leads past 150 % that kept
        # theirs are counted apart (nobody available, or the limit reached), never inside it.
        fallbacks = (
            f" ({self.fallbacks} batch(es) failed and retried lead by lead)"
            if self.fallbacks
            else ""
        )
        return (
            f"sweep: {self.warned} warned, {self.breached} breached, {self.reassigned} reassigned "
            f"to a new owner, {self.no_candidate} kept their owner (nobody available), "
            f"{self.limit_reached} at the reassignment limit, {self.superseded} superseded, "
            f"{self.resumed} resumed, {self.errors} errors{fallbacks}; "
            f"{self.claimed} timers in {self.batches} batches"
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def run_sweep(
    now: datetime | None = None,
    batch_size: int | None = None,
    max_batches: int | None = None,
    on_full_batch=None,
) -> SweepResult:
    """Fire everything due at `now` (default: the current time). Safe to run concurrently.
    `on_full_batch` is called once after the first full batch (a backlog: time to fan out)."""
    started_at = timezone.now()
    now = now or started_at
    batch_size = batch_size or settings.SWEEP_BATCH_SIZE
    max_batches = max_batches or settings.SWEEP_MAX_BATCHES
    correlation_id = f"sweep-{uuid.uuid4().hex[:12]}"
    result = SweepResult(correlation_id=correlation_id)
    result.resumed += reassign.resume_due_holds(now=now)  # held leads without a timer
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
        if on_full_batch is not None and result.batches == 1:
            on_full_batch()
    if result.claimed:
        logger.info("%s [%s]", result.summary(), correlation_id)
    sweep_runs.record_run(
        started_at=started_at,
        finished_at=timezone.now(),
        as_of=now,
        correlation_id=correlation_id,
        counts=result.as_dict(),
    )
    return result


# What the warn/breach pass reads; the rare per-lead pass reloads the whole row. Fewer columns
# (timestamps above all) make building a batch of 500 several times cheaper. `next_fire_at` is
# only ever written here. Owners are loaded once each (`_attach_org`), not once per row.
CLAIM_FIELDS = (
    "lead_id",
    "state",
    "started_at",  # written on every audit event of the timer (calibration reads it)
    "owner_id",
    "policy_id",
    "policy_version",
    "window",
    "clock",
    "thresholds",
    "warn_at",
    "due_at",
    "reassign_at",
    "stage",
    "running_since",
    "consumed",
    "paused_at",
    "resume_at",
    "completed_at",
    "error_count",
    "last_error",
    "lead__name",
    "lead__company",
    "lead__market_id",
    "lead__source_id",
    "lead__team_id",
    "lead__owner_id",
    "lead__state",
)


OWNER_FIELDS = ("name", "team_id", "hours", "timezone", "active")


def _claim(now: datetime, batch_size: int) -> list[SlaTimer]:
    qs = (
        SlaTimer.objects.filter(completed_at__isnull=True, next_fire_at__lte=now)
        .order_by("next_fire_at")
        .select_related("lead")
        .only(*CLAIM_FIELDS)
    )
    if connection.features.has_select_for_update_skip_locked:
        # Another sweep's rows are skipped, not waited for: no stage is fired twice and no
        # sweep blocks another. (SQLite has one writer at a time, so the transaction suffices.)
        # NO KEY UPDATE: rows naming the timer (audit, outbox) never wait for this lock.
        qs = qs.select_for_update(skip_locked=True, no_key=True, of=("self",))
    timers = list(qs[:batch_size])
    _attach_org(timers)
    return timers


def _attach_org(timers: list[SlaTimer]) -> None:
    """Markets, teams and sources are few: load each once per batch instead of joining them
    into every row (the claim stays narrow and building model instances stays cheap)."""
    if not timers:
        return
    leads = [t.lead for t in timers]
    owners = Rep.objects.only(*OWNER_FIELDS).in_bulk({lead.owner_id for lead in leads} - {None})
    team_ids = {lead.team_id for lead in leads} | {rep.team_id for rep in owners.values()}
    teams = Team.objects.in_bulk(team_ids)
    market_ids = {lead.market_id for lead in leads} | {t.market_id for t in teams.values()}
    markets = Market.objects.in_bulk(market_ids)
    sources = Source.objects.in_bulk({lead.source_id for lead in leads})
    # Filling the relation caches directly (what select_related does) skips the descriptors'
    # checks, which cost more than the rest of this function at 500 rows.
    cache_market = Team._meta.get_field("market").set_cached_value
    lead_market = Lead._meta.get_field("market").set_cached_value
    lead_team = Lead._meta.get_field("team").set_cached_value
    lead_source = Lead._meta.get_field("source").set_cached_value
    lead_owner = Lead._meta.get_field("owner").set_cached_value
    rep_team = Rep._meta.get_field("team").set_cached_value
    for team in teams.values():
        cache_market(team, markets[team.market_id])
    for rep in owners.values():
        rep_team(rep, teams[rep.team_id])
    for lead in leads:
        lead_market(lead, markets[lead.market_id])
        lead_team(lead, teams[lead.team_id])
        lead_source(lead, sources[lead.source_id])
        lead_owner(lead, owners.get(lead.owner_id))


def _crossed(timer: SlaTimer, now: datetime) -> list[str]:
    crossed = []
    stage = timer.stage
    while (following := planning.next_stage(stage)) is not None:
        if getattr(timer, planning.STAGE_INSTANT[following]) > now:
            break
        crossed.append(following)
        stage = following
    return crossed


def _process_batch(batch, now, result: SweepResult, correlation_id: str) -> None:
    managers = Rep.objects.managers_by_team({t.lead.team_id for t in batch})
    events, messages, changed, overtaken, per_lead = [], [], [], [], []
    failed: set[int] = set()
    calendars = BatchCalendars()
    for timer in batch:
        if timer.paused_at is not None:
            per_lead.append((timer, "resume"))
            continue
        original_stage = timer.stage
        try:
            fired = _fire(timer, now, managers, correlation_id, calendars)
        except Exception as exc:  # one lead's failure must not stop the batch
            timer.stage = original_stage
            _note_error(timer, now, exc, result)
            failed.add(timer.pk)
        else:
            for stage, event, message in fired:
                events.append(event)
                messages.append(message)
                result.superseded += event["details"]["superseded"]
                if stage == Stage.WARNED:
                    result.warned += 1
                else:
                    result.breached += 1
                    overtaken.append(timer.pk)
            if timer.stage == Stage.BREACHED and timer.reassign_at <= now:
                per_lead.append((timer, "reassign"))
                overtaken.append(timer.pk)
        changed.append(timer)
    _save_stages(changed, failed)
    if overtaken:
        supersede_stage_messages(overtaken)
    log.record_many(events)
    outbox.add(messages)

    # The 150 % stage for the whole batch at once; if that fails, lead by lead so that one
    # bad lead cannot hold back the others.
    due = [timer for timer, action in per_lead if action == "reassign"]
    if due:
        try:
            with transaction.atomic():
                _count(
                    result,
                    reassign.reassign_due(
                        due, now=now, correlation_id=correlation_id, managers=managers
                    ),
                )
        except Exception:
            # Counted: the summary must not say "0 errors" when a batch failed (a deadlock, a
            # bad row), even if every lead then goes through on its own.
            logger.exception("batched reassignment failed; retrying lead by lead")
            result.errors += 1
            result.fallbacks += 1
            for timer in due:
                _one_by_one(
                    timer,
                    result,
                    now,
                    lambda t: _count(
                        result,
                        reassign.reassign_due(
                            [t], now=now, correlation_id=correlation_id, managers=managers
                        ),
                    ),
                )
    for timer, action in per_lead:
        if action == "resume":
            _one_by_one(
                timer,
                result,
                now,
                lambda t: setattr(
                    result, "resumed", result.resumed + reassign.resume_paused(_reload(t), now=now)
                ),
            )


def _count(result: SweepResult, outcomes) -> None:
    result.reassigned += outcomes.get("reassigned", 0)
    result.no_candidate += outcomes.get("no_candidate", 0)
    result.limit_reached += outcomes.get("limit_reached", 0)
    result.skipped_locked += outcomes.get("locked", 0)


def _one_by_one(timer: SlaTimer, result: SweepResult, now: datetime, action) -> None:
    try:
        with transaction.atomic():
            action(timer)
    except Exception as exc:
        _note_error(timer, now, exc, result)
        SlaTimer.objects.filter(pk=timer.pk).update(
            next_fire_at=timer.next_fire_at,
            error_count=timer.error_count,
            last_error=timer.last_error,
        )


def _reload(timer: SlaTimer) -> SlaTimer:
    """The whole row of a claimed timer (this transaction already holds its lock)."""
    full = SlaTimer.objects.select_related("lead__owner").get(pk=timer.pk)
    full.lead.market, full.lead.team = timer.lead.market, timer.lead.team
    full.lead.source = timer.lead.source
    if full.lead.owner_id:
        full.lead.owner.team = (
            full.lead.team
            if full.lead.owner.team_id == full.lead.team_id
            else timer.lead.owner.team
        )
    return full


def _save_stages(timers: list[SlaTimer], failed: set[int]) -> None:
    """Write the batch back with one UPDATE per stage reached: after a warning the next instant
    is the timer's own `due_at`, after a breach its `reassign_at`, so no per-row values are
    needed (Django's `bulk_update` builds a CASE per row, far slower at this size). Rows that
    failed or need something else are written one by one; they are rare."""
    by_stage: dict[str, list[int]] = {Stage.WARNED: [], Stage.BREACHED: []}
    singles = []
    for timer in timers:
        following = {Stage.WARNED: "due_at", Stage.BREACHED: "reassign_at"}.get(timer.stage)
        if timer.pk not in failed and following and timer.next_fire_at == getattr(timer, following):
            by_stage[timer.stage].append(timer.pk)
        else:
            singles.append(timer)
    next_instant = {Stage.WARNED: F("due_at"), Stage.BREACHED: F("reassign_at")}
    for stage, ids in by_stage.items():
        if ids:
            SlaTimer.objects.filter(pk__in=ids).update(
                stage=stage, next_fire_at=next_instant[stage]
            )
    for timer in singles:
        SlaTimer.objects.filter(pk=timer.pk).update(
            stage=timer.stage,
            next_fire_at=timer.next_fire_at,
            error_count=timer.error_count,
            last_error=timer.last_error,
        )


class BatchCalendars:
    """Calendars looked up once per market (and rep) for the batch, not once per timer: the
    builders' cache key costs as much as the calendar arithmetic itself."""

    def __init__(self):
        self._markets: dict[tuple[int, str], object] = {}
        self._release: dict[int, object] = {}

    def for_timer(self, timer):
        key = (timer.lead.market_id, timer.clock)
        if key not in self._markets:
            self._markets[key] = planning.calendar_for(timer.lead, timer.clock)
        return self._markets[key]

    def release(self, rep, now):
        if rep.pk not in self._release:
            self._release[rep.pk] = outbox.release_time(rep, now)
        return self._release[rep.pk]


def _fire(timer, now, managers, correlation_id, calendars=None) -> list[tuple[str, object, object]]:
    """Advance one timer through every warn/breach stage whose instant has passed (in memory);
    returns (stage, audit event, outbox row) for each. The reassign stage is left to the
    per-lead pass. Raises without side effects if anything goes wrong."""
    crossed = _crossed(timer, now)
    fired = [stage for stage in crossed if stage != Stage.REASSIGNED]
    out = []
    if fired:
        calendars = calendars or BatchCalendars()
        calendar = calendars.for_timer(timer)
        elapsed = planning.business_elapsed(timer, now, calendar)
    for stage in fired:
        superseded = stage != crossed[-1]  # a later stage's instant has passed too
        due = getattr(timer, planning.STAGE_INSTANT[stage])
        timer.stage = stage
        event = log.build_values(
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
            (
                stage,
                event,
                _stage_message(timer, stage, due, now, elapsed, managers, superseded, calendars),
            )
        )
    timer.next_fire_at = planning.next_fire_at(timer)
    if (
        timer.next_fire_at is not None
        and timer.next_fire_at <= now
        and Stage.REASSIGNED not in crossed
    ):
        raise RuntimeError(f"timer {timer.pk} would be due again at once")
    return out


def _stage_message(timer, stage, due, now, elapsed, managers, superseded, calendars=None):
    lead = timer.lead
    if stage == Stage.WARNED and lead.owner_id:
        persona, recipient = Persona.OWNER, lead.owner
    else:  # the breach, or a warning about a lead nobody owns, goes to the manager
        persona, recipient = Persona.MANAGER, managers.get(lead.team_id)
    return outbox.message_values(
        key=outbox.stage_key(timer, stage, persona),
        kind=STAGE_MESSAGE[stage],
        persona=persona,
        lead=lead,
        now=now,
        recipient=recipient,
        timer=timer,
        stage=stage,
        superseded=superseded,
        release=calendars.release if calendars else None,
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
