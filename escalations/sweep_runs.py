"""The record of sweep runs (SPEC §10): the admin's status block and `/healthz` read the last
one. One row per run, written after the run's batches (outside them: a sweep that crashes
leaves no row, so the record goes stale and `/healthz` says so)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings

from audit.models import AuditEvent, AuditKind
from escalations.models import SweepRun

KEEP_FOR = timedelta(days=2)
# Pruning runs once every this many runs (hourly at one sweep a minute), not on every run: an
# idle sweep stays one SELECT and one INSERT.
PRUNE_EVERY = 60
STALE_AFTER_INTERVALS = 3


def record_run(
    *, started_at: datetime, finished_at: datetime, as_of: datetime, correlation_id: str, counts
) -> SweepRun:
    run = SweepRun.objects.create(
        started_at=started_at,
        finished_at=finished_at,
        as_of=as_of,
        correlation_id=correlation_id,
        counts=counts,
    )
    if run.pk % PRUNE_EVERY == 0:
        SweepRun.objects.filter(finished_at__lt=finished_at - KEEP_FOR).delete()
    return run


def last_run() -> SweepRun | None:
    return SweepRun.objects.order_by("-finished_at").first()


def stale_after() -> timedelta:
    return timedelta(minutes=settings.SWEEP_INTERVAL_MINUTES * STALE_AFTER_INTERVALS)


def is_stale(run: SweepRun | None, now: datetime) -> bool:
    """No sweep recorded, or the last one finished more than three intervals ago."""
    return run is None or now - run.finished_at > stale_after()


# --- what a run fired, from its audit events ----------------------------------------------

# audit kind -> what the sweep did, in the words of `manage.py escalate` and the status block
FIRED_KINDS = {
    AuditKind.SLA_WARNING: "warned",
    AuditKind.SLA_BREACH: "breached",
    AuditKind.SLA_BREACH_AUTO_REASSIGN: "reassigned",
    AuditKind.REASSIGN_NO_CANDIDATE: "kept owner (nobody available)",
    AuditKind.REASSIGN_LIMIT_REACHED: "kept owner (reassignment limit)",
}


@dataclass(frozen=True)
class Fired:
    lead_id: int | None
    lead: str
    stage: str
    owner: str
    new_owner: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def fired_by(correlation_id: str, as_of: datetime, *, scope=None, limit: int = 1000) -> list[Fired]:
    """What the run fired, lead by lead, from its audit events (every event of a run carries its
    correlation id and the instant it swept up to, `as_of`; the (kind, occurred_at) index serves
    the lookup). `scope` (a `permissions.Scope`) narrows it to a team lead's teams."""
    events = AuditEvent.objects.filter(
        kind__in=list(FIRED_KINDS), occurred_at=as_of, correlation_id=correlation_id
    ).order_by("id")
    if scope is not None:
        events = scope.filter(events, "team")
    return [
        Fired(
            lead_id=event.lead_id,
            lead=event.lead_label,
            stage=FIRED_KINDS[event.kind],
            owner=event.owner_name or "nobody",
            new_owner=(event.details or {}).get("to_rep") or "",
        )
        for event in events[:limit]
    ]
