"""Outbox delivery (SPEC §8): at least once, with a lease, backoff and an audit trail.

`outbox.enqueue_delivery()` is called on commit by `outbox.add`; it queues the django-q2 task
`escalations.tasks.deliver`, which runs `deliver_due()`. A schedule runs the same task every
minute for stragglers (retries, quiet-hour rows, lost wake-ups).

One `deliver_due()` call drains one bounded batch:
1. claim: rows due now (`pending` with `next_attempt_at <= now`, or `sending` whose lease has
   run out — a worker died between claim and record) are moved to `sending` by a compare-and-set
   on (id, status, attempts), so two workers never claim the same row. On PostgreSQL the
   candidates are read with `FOR UPDATE SKIP LOCKED` so workers do not even contend;
2. check: a stage message whose timer has finished meanwhile, or a message to a rep who is no
   longer active, is marked superseded and not sent;
3. render and route in this thread and hand each message to a pool of NOTIFY_CONCURRENCY
   threads as soon as it is ready (the transports touch no database); record each outcome in
   this thread, in its own short transaction, as it comes back: sent (channel, destination,
   provider id, time) or retry with exponential backoff (a 429 waits its Retry-After) or
   failed (after NOTIFY_MAX_ATTEMPTS, or at once on a permanent error), each with its audit
   event. A failed message tells the team's manager (a `delivery_failed` row); a failed
   `delivery_failed` row tells nobody more.

A timeout or a reset connection after the request went out is an unknown outcome, not a
failure: the row is retried with `unsure_since` set, and the next send first looks for its own
message (Slack: the row's key in the message `metadata`, found with `conversations.history`)
and posts only if it is not there. An unknown outcome never marks a row failed; after the last
attempt one more round only looks, and fails the row only if the message is not there. A crash
after the claim leaves the row `sending` until its lease ends; it is then claimed as unsure too.
So Slack gets each message once; Teams webhooks and email, which cannot be asked, get it at
least once (sent again after a timeout or a crash in that window)."""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from time import monotonic, sleep

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit import log
from audit.models import AuditKind
from escalations.models import (
    REP_PERSONAS,
    MessageKind,
    Notification,
    NotificationStatus,
    Persona,
    SlaTimer,
)
from escalations.notify import messages, outbox, ratelimit, routing, transports
from escalations.notify.outbox import enqueue_delivery
from leadops.actors import SYSTEM
from leadops.bulk import update_columns_by_pk
from teams.models import Rep

logger = logging.getLogger(__name__)

STAGE_KINDS = frozenset({MessageKind.WARNING, MessageKind.BREACH})


@dataclass
class DeliveryResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    superseded: int = 0
    lost_lease: int = 0
    by_channel: dict = field(default_factory=dict)

    def summary(self) -> str:
        channels = ", ".join(f"{n} {c}" for c, n in sorted(self.by_channel.items()))
        return (
            f"delivery: {self.sent} sent{f' ({channels})' if channels else ''}, "
            f"{self.retrying} to retry, {self.failed} failed, {self.superseded} superseded; "
            f"{self.claimed} claimed"
        )

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failed tries: base · 2^(n-1), capped."""
    base = settings.NOTIFY_BACKOFF_BASE_SECONDS
    exponent = max(attempts - 1, 0)
    seconds = settings.NOTIFY_BACKOFF_CAP_SECONDS if exponent > 30 else base * 2**exponent
    return timedelta(seconds=min(seconds, settings.NOTIFY_BACKOFF_CAP_SECONDS))


def deliver_due(
    now: datetime | None = None, limit: int | None = None, *, chain: bool | None = None
) -> DeliveryResult:
    """Send one bounded batch of due outbox rows. With `chain` (default: when `now` is not
    given, i.e. in the task) a full batch queues another task for the rest."""
    if chain is None:
        chain = now is None
    now = (now or timezone.now()).astimezone(UTC)
    limit = limit or settings.NOTIFY_BATCH_SIZE
    started = monotonic()
    result = DeliveryResult()
    claimed = claim(now, limit)
    result.claimed = len(claimed)
    if not claimed:
        return result
    _deliver(claimed, now, started, result)
    logger.info(result.summary())
    if chain and result.claimed >= limit:
        enqueue_delivery()
    return result


# --- 1. claim -------------------------------------------------------------------------------------


def claim(now: datetime, limit: int) -> dict[int, int]:
    """Claim up to `limit` due rows: {id: attempts after the claim}."""
    lease_until = now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    # A claimed row's next_attempt_at is its lease end, so both kinds of due rows (pending and
    # lease expired) are one range on the `notification_due` partial index.
    due = (
        Notification.objects.filter(
            status__in=[NotificationStatus.PENDING, NotificationStatus.SENDING],
            next_attempt_at__lte=now,
        )
        .filter(Q(status=NotificationStatus.PENDING) | Q(lease_until__lt=now))
        .order_by("next_attempt_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.values_list("pk", "status", "attempts")[:limit])
        if not rows:
            return {}
        # One UPDATE for the batch. The rows are ours: locked by this transaction on
        # PostgreSQL (SKIP LOCKED kept other workers off them), and on SQLite the transaction
        # holds the only write lock. `claim_row` is the same step for one row.
        lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
        Notification.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
            status=NotificationStatus.SENDING,
            attempts=F("attempts") + 1,
            lease_until=lease_until,
            next_attempt_at=lease_until,
            unsure_since=Case(
                When(
                    status=NotificationStatus.SENDING,
                    then=Coalesce(
                        F("unsure_since"),
                        ExpressionWrapper(F("lease_until") - lease, output_field=DateTimeField()),
                    ),
                ),
                default=F("unsure_since"),
            ),
        )
    return {pk: attempts + 1 for pk, _, attempts in rows}


def claim_row(pk: int, status: str, attempts: int, *, now: datetime, lease_until: datetime) -> bool:
    """Compare-and-set: only the worker that still sees (status, attempts), due, gets the row.
    (Due is checked again: a row put back with a Retry-After keeps its attempts.) A row still
    `sending` after its lease belongs to a worker that died, perhaps after the provider took
    the message: its send becomes unsure since that lease began."""
    unsure = {}
    if status == NotificationStatus.SENDING:
        lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
        unsure["unsure_since"] = Coalesce(
            F("unsure_since"),
            ExpressionWrapper(F("lease_until") - lease, output_field=DateTimeField()),
        )
    return bool(
        Notification.objects.filter(
            pk=pk, status=status, attempts=attempts, next_attempt_at__lte=now
        ).update(
            status=NotificationStatus.SENDING,
            attempts=attempts + 1,
            lease_until=lease_until,
            next_attempt_at=lease_until,
            **unsure,
        )
    )


# --- 2. check, render, route ----------------------------------------------------------------------


@dataclass
class Job:
    row: Notification
    attempts: int  # as claimed; the record's compare-and-set expects it
    transport: object = None
    message: object = None
    error: Exception | None = None  # rendering or routing failed: retried like a send error


@dataclass
class SendOutcome:
    job: Job
    result: transports.SendResult | None = None
    error: Exception | None = None
    elapsed: float = 0.0  # seconds after the start of the run, for sent_at


def _stale_reason(row: Notification) -> str:
    if row.kind in STAGE_KINDS and (row.timer_id is None or row.timer.completed_at is not None):
        return "the timer finished before delivery"
    if row.persona in REP_PERSONAS and row.recipient is not None and not row.recipient.active:
        return f"{row.recipient.name} is no longer active"
    return ""


def _prepare(claimed: dict[int, int], now: datetime, result: DeliveryResult):
    """Yield a job per claimed row, rendered and routed, as soon as it is ready."""
    rows = list(
        Notification.objects.filter(pk__in=list(claimed))
        .select_related(
            "lead__market",
            "lead__source",
            "lead__team",
            "lead__owner",
            "timer",
            "recipient",
            "team",
        )
        .order_by("next_attempt_at", "pk")
    )
    open_timers = {
        t.lead_id: t
        for t in SlaTimer.objects.filter(
            lead_id__in={r.lead_id for r in rows}, completed_at__isnull=True
        )
    }
    managers = Rep.objects.managers_by_team({r.team_id for r in rows})
    wanted = set().union(*(messages.context_rep_ids(r) for r in rows))
    names = dict(Rep.objects.filter(pk__in=wanted).values_list("pk", "name")) if wanted else {}
    for row in rows:
        attempts = claimed[row.pk]
        if reason := _stale_reason(row):
            done = Notification.objects.filter(
                pk=row.pk,
                status=NotificationStatus.SENDING,
                attempts=attempts,
            ).update(
                status=NotificationStatus.SUPERSEDED,
                lease_until=None,
                attempts=attempts - 1,
                last_error=f"not sent: {reason}",
            )
            result.superseded += done
            continue
        job = Job(row=row, attempts=attempts)
        try:
            timer = open_timers.get(row.lead_id)
            timer = timer if timer is not None else row.timer
            if timer is not None:
                timer.lead = row.lead
            job.message = messages.render(row, now=now, timer=timer, names=names)
            ctx = row.context or {}
            avoid = {}
            if row.kind == MessageKind.DELIVERY_FAILED:
                avoid = (
                    {"avoid_channel": ctx.get("channel", "")}
                    if ctx.get("transport_down")
                    else {"avoid_destination": ctx.get("destination", "")}
                )
            job.transport = routing.route(row, manager=managers.get(row.team_id), **avoid)
        except Exception as exc:  # one bad row must not stop the batch
            logger.exception("could not prepare notification %s", row.pk)
            job.error = exc
        yield job


# --- 3. send --------------------------------------------------------------------------------------


class LeaseRunningOut(transports.TemporaryError):
    """Not sent: too little of the lease was left to start a send (another worker could claim
    the row mid-send and send it too). Back to pending at once, without using up an attempt."""

    def __init__(self):
        super().__init__("not sent: the lease was running out", retry_after=0, rate_limited=True)


def _too_late(elapsed: float) -> bool:
    lease = settings.NOTIFY_LEASE_SECONDS
    # A send may look for an earlier unsure one first: a few requests, each up to the timeout.
    return elapsed > lease - min(4 * transports.http_timeout(), lease / 2)


def _look_only(job: Job) -> bool:
    """Every attempt is used and the last one's outcome is unknown: look, do not post again."""
    return job.row.unsure_since is not None and job.attempts > settings.NOTIFY_MAX_ATTEMPTS


def _send_one(job: Job, started: float) -> SendOutcome:
    if job.error is not None:
        return SendOutcome(job, error=job.error, elapsed=monotonic() - started)
    if _too_late(monotonic() - started):
        return SendOutcome(job, error=LeaseRunningOut(), elapsed=monotonic() - started)
    try:
        sent = job.transport.send(
            job.message,
            key=job.row.dedupe_key,
            unsure_since=job.row.unsure_since,
            post=not _look_only(job),
        )
    except Exception as exc:
        return SendOutcome(job, error=exc, elapsed=monotonic() - started)
    return SendOutcome(job, result=sent, elapsed=monotonic() - started)


# Outcomes are recorded in groups, one short transaction each: this many, or as many as came
# back within RECORD_EVERY seconds (one commit per message was most of the time per message).
RECORD_GROUP = 50
RECORD_EVERY = 0.05
# A send waits this long at most for its destination's pace; longer, the row goes back to
# pending until then (without using up an attempt).
MAX_PACING_WAIT = 2.0

_limiter: ratelimit.DestinationLimiter | None = None
_limiter_lock = threading.Lock()


def limiter() -> ratelimit.DestinationLimiter:
    """This process's pace per destination (NOTIFY_RATE_PER_SECOND, NOTIFY_RATE_BURST)."""
    global _limiter
    with _limiter_lock:
        rate, burst = settings.NOTIFY_RATE_PER_SECOND, settings.NOTIFY_RATE_BURST
        if _limiter is None or (_limiter.rate, _limiter.burst) != (rate, max(burst, 1.0)):
            _limiter = ratelimit.DestinationLimiter(rate, burst)
        return _limiter


class Paced(transports.TemporaryError):
    """Not sent yet: the destination's pace (or its Retry-After) says later."""

    def __init__(self, seconds: float):
        super().__init__(
            f"not sent: paced, the destination takes the next message in {seconds:.1f} s",
            retry_after=seconds,
            rate_limited=True,
        )


def _lane(job: Job):
    """Messages to one destination go out one after the other, in order, at its pace. The log
    has no pace and no order to keep."""
    transport = job.transport
    if transport is None or transport.channel == transports.CONSOLE:
        return None
    return (transport.channel, transport.destination)


class _Lanes:
    """One queue of jobs per destination, drained by at most one worker at a time: a job is
    sent as soon as it is ready (rendering overlaps sending), and one destination's jobs go
    in the order they were prepared."""

    def __init__(self, pool, started: float, out: queue.SimpleQueue):
        self.pool, self.started, self.out = pool, started, out
        self._waiting: dict[object, deque[Job]] = {}
        self._lock = threading.Lock()
        self.futures = []

    def add(self, job: Job) -> None:
        key = _lane(job)
        if key is None:  # no order to keep, no pace: on its own
            self.futures.append(self.pool.submit(self._drain, None, deque([job])))
            return
        with self._lock:
            if key in self._waiting:  # its worker is running and will take it
                self._waiting[key].append(job)
                return
            self._waiting[key] = jobs = deque([job])
        self.futures.append(self.pool.submit(self._drain, key, jobs))

    def _next(self, key, jobs: deque) -> Job | None:
        with self._lock:
            if jobs:
                return jobs.popleft()
            if key is not None:
                del self._waiting[key]
            return None

    def _drain(self, key, jobs: deque) -> None:
        pace = limiter()
        while (job := self._next(key, jobs)) is not None:
            if key is not None and job.error is None:
                ok, wait = pace.take(key, max_wait=MAX_PACING_WAIT)
                if not ok:  # this one and the ones behind it wait in the outbox
                    self.out.put(self._paced(job, wait))
                    while (rest := self._next(key, jobs)) is not None:
                        self.out.put(self._paced(rest, wait))
                    return
                if wait:
                    sleep(wait)
            outcome = _send_one(job, self.started)
            self.out.put(outcome)
            retry_after = getattr(outcome.error, "retry_after", None)
            if key is not None and getattr(outcome.error, "rate_limited", False) and retry_after:
                pace.block(key, retry_after)

    def _paced(self, job: Job, wait: float) -> SendOutcome:
        return SendOutcome(job, error=Paced(wait), elapsed=monotonic() - self.started)


def _deliver(claimed: dict[int, int], now: datetime, started: float, result: DeliveryResult):
    """Send by destination in a pool (in order and at its pace within each destination, many
    destinations at once) as each job is ready; record the outcomes in groups as they come
    back, each group in its own short transaction (never one held open across network calls:
    on SQLite it would hold the write lock, and a crash would lose the records of messages
    already sent)."""
    workers = min(settings.NOTIFY_CONCURRENCY, len(claimed))
    managers: dict[int, Rep | None] = {}
    out: queue.SimpleQueue = queue.SimpleQueue()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notify") as pool:
        lanes = _Lanes(pool, started, out)
        expected = 0
        for job in _prepare(claimed, now, result):
            lanes.add(job)
            expected += 1
        futures = lanes.futures
        group: list[SendOutcome] = []
        received = 0
        flush_at = None
        while received < expected:
            timeout = RECORD_EVERY if flush_at is None else max(flush_at - monotonic(), 0.0)
            try:
                outcome = out.get(timeout=timeout)
            except queue.Empty:
                outcome = None
            else:
                received += 1
                group.append(outcome)
                if flush_at is None:
                    flush_at = monotonic() + RECORD_EVERY
            if group and (
                len(group) >= RECORD_GROUP
                or received == expected
                or (flush_at is not None and monotonic() >= flush_at)
            ):
                _record_group(group, now, result, managers)
                group, flush_at = [], None
            if outcome is None and all(f.done() for f in futures) and out.empty():
                if group:
                    _record_group(group, now, result, managers)
                for future in futures:
                    future.result()  # a lane that died (a bug, a killed worker): raise it
                break


# --- 4. record ------------------------------------------------------------------------------------


def _record_group(group: list[SendOutcome], now, result, managers) -> None:
    """Record a group of outcomes in one transaction: the sent ones with one UPDATE and one
    INSERT of their audit events, the others one by one (retries, failures: rarer)."""
    try:
        with transaction.atomic():
            expected = {o.job.row.pk: o.job.attempts for o in group}
            mine = Notification.objects.filter(
                pk__in=list(expected), status=NotificationStatus.SENDING
            )
            if connection.features.has_select_for_update:
                mine = mine.select_for_update(no_key=True)
            still_mine = {pk for pk, n in mine.values_list("pk", "attempts") if expected[pk] == n}
            sent = [o for o in group if o.result is not None and o.job.row.pk in still_mine]
            _record_sent(sent, now, result)
            for outcome in group:
                if outcome.job.row.pk not in still_mine:
                    result.lost_lease += 1
                elif outcome.result is None:
                    _record_one(outcome, now, result, managers)
    except Exception:
        logger.exception("could not record notifications %s", [o.job.row.pk for o in group][:20])


def _record_sent(sent: list[SendOutcome], now, result) -> None:
    if not sent:
        return
    rows, events = [], []
    for outcome in sent:
        job, row, done = outcome.job, outcome.job.row, outcome.result
        at = now + timedelta(seconds=outcome.elapsed)
        channel = job.transport.channel
        row.status, row.channel = NotificationStatus.SENT, channel
        row.destination, row.provider_id = done.destination[:500], done.provider_id[:100]
        row.sent_at, row.lease_until, row.last_error, row.unsure_since = at, None, "", None
        rows.append(row)
        result.sent += 1
        result.by_channel[channel] = result.by_channel.get(channel, 0) + 1
        events.append(
            log.build_values(
                AuditKind.NOTIFICATION_SENT,
                lead=row.lead,
                timer=row.timer,
                owner=row.lead.owner if row.lead.owner_id else None,
                actor=SYSTEM,
                occurred_at=at,
                details={
                    **_audit_base(job),
                    "destination": done.destination,
                    "provider_id": done.provider_id,
                    "sent_at": at.isoformat(),
                },
            )
        )
    # One UPDATE with a CASE per column (Django's bulk_update compiles an expression per value:
    # slower than the sends it records).
    update_columns_by_pk(
        Notification,
        {
            row.pk: {
                "channel": row.channel,
                "destination": row.destination,
                "provider_id": row.provider_id,
                "sent_at": row.sent_at,
            }
            for row in rows
        },
        status=NotificationStatus.SENT,
        lease_until=None,
        last_error="",
        unsure_since=None,
    )
    log.record_many(events)


def _audit_base(job: Job) -> dict:
    row = job.row
    return {
        "notification_id": row.pk,
        "kind": row.kind,
        "persona": row.persona,
        "recipient": row.recipient.name if row.recipient else None,
        "recipient_id": row.recipient_id,
        "channel": getattr(job.transport, "channel", ""),
        "destination": getattr(job.transport, "destination", ""),
        "attempts": job.attempts,
    }


def _still_mine(job: Job):
    return Notification.objects.filter(
        pk=job.row.pk, status=NotificationStatus.SENDING, attempts=job.attempts
    )


def _record_one(outcome: SendOutcome, now, result, managers) -> None:
    """A send that did not go through (sent ones are recorded by `_record_sent`): back to
    pending with a delay, or failed for good (and the manager told)."""
    job, row = outcome.job, outcome.job.row
    at = now + timedelta(seconds=outcome.elapsed)
    channel = getattr(job.transport, "channel", "")
    destination = getattr(job.transport, "destination", "")
    base = _audit_base(job)
    error = outcome.error
    text = f"{type(error).__name__}: {error}"[:2000]
    permanent = isinstance(error, transports.PermanentError)
    rate_limited = getattr(error, "rate_limited", False)
    # An unknown outcome is not a failure: the provider may have the message. It is retried
    # (looking first) and never failed; a look after the last attempt does not count.
    unknown = isinstance(error, transports.UnknownOutcome)
    if not permanent and (unknown or rate_limited or job.attempts < settings.NOTIFY_MAX_ATTEMPTS):
        retry_after = getattr(error, "retry_after", None)
        delay = timedelta(seconds=retry_after) if retry_after is not None else backoff(job.attempts)
        # A rate limit says nothing about the message: it does not use up an attempt.
        uncounted = rate_limited or (unknown and _look_only(job))
        attempts = job.attempts - 1 if uncounted else job.attempts
        unsure = {}
        if unknown and job.row.unsure_since is None:
            unsure["unsure_since"] = now
        if _still_mine(job).update(
            status=NotificationStatus.PENDING,
            next_attempt_at=now + delay,
            lease_until=None,
            last_error=f"{now.isoformat()} {text}"[:2000],
            attempts=attempts,
            channel=channel,
            destination=destination[:500],
            **unsure,
        ):
            result.retrying += 1
        else:
            result.lost_lease += 1
        return

    if not _still_mine(job).update(
        status=NotificationStatus.FAILED,
        lease_until=None,
        channel=channel,
        destination=destination[:500],
        last_error=f"{now.isoformat()} {text}"[:2000],
    ):
        result.lost_lease += 1
        return
    result.failed += 1
    logger.warning("notification %s failed for good: %s", row.pk, text)
    details = {"error": text, "permanent": permanent, "failed_at": at.isoformat()}
    _audit(AuditKind.NOTIFICATION_FAILED, row, at, {**base, **details})
    if row.kind != MessageKind.DELIVERY_FAILED:
        notice = outbox.message(
            key=f"failed:{row.pk}",
            kind=MessageKind.DELIVERY_FAILED,
            persona=Persona.MANAGER,
            lead=row.lead,
            now=now,
            recipient=outbox.team_manager(row.team_id, managers),
            timer=row.timer,
            stage=row.stage,
            context={
                "failed_notification_id": row.pk,
                "failed_kind": row.kind,
                "failed_persona": row.persona,
                "failed_recipient": base["recipient"],
                "channel": channel,
                "destination": destination,
                "error": str(error)[:500],
                "attempts": job.attempts,
                "permanent": permanent,
                "transport_down": bool(getattr(error, "transport_down", False)),
            },
        )
        outbox.add([notice])


def _audit(kind: str, row: Notification, at: datetime, details: dict):
    log.record(
        kind,
        lead=row.lead,
        timer=row.timer,
        owner=row.lead.owner if row.lead.owner_id else None,
        actor=SYSTEM,
        occurred_at=at,
        details=details,
    )
