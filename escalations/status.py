"""The operational status (SPEC §10): the admin index's status block and `/healthz` read it.

- the last sweep: when it ran, how long it took, what it fired (for a team lead: on their teams);
- the due backlog now (open timers whose next instant has passed: the sweep is behind);
- open leads at risk and breached now, as the lead list's SLA status filter counts them
  (`explain.status_code`: the running timer warned, or breached), not counting held leads;
- notifications pending (due or retrying), held for quiet hours (not yet tried, released later)
  and failed in the last 24 hours.

Every figure is one indexed query that stays cheap at a million leads: the partial indexes on
open timers (`timer_due_open`, `timer_open_stage`), on undelivered notifications
(`notification_due`), and the audit log's (kind, occurred_at) index for failures. Counts that
could be large are capped (`CAP`): past it the block says "10,000+", which is all an operator
needs to know."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q

from audit.models import AuditEvent, AuditKind
from escalations import sweep_runs
from escalations.models import Notification, NotificationStatus, SlaTimer, Stage, SweepRun

CAP = 10_000
FAILED_WINDOW = timedelta(hours=24)
UNDELIVERED = (NotificationStatus.PENDING, NotificationStatus.SENDING)
# The sweep's result key behind each of `sweep_runs.FIRED_KINDS`' words ("what fired").
RESULT_KEYS = {
    "warned": "warned",
    "breached": "breached",
    "reassigned": "reassigned",
    "kept owner (nobody available)": "no_candidate",
    "kept owner (reassignment limit)": "limit_reached",
}


@dataclass(frozen=True)
class CappedCount:
    value: int
    capped: bool = False

    def __str__(self) -> str:
        return f"{self.value:,}+" if self.capped else f"{self.value:,}"


@dataclass
class Status:
    now: datetime
    last_run: SweepRun | None
    stale: bool
    fired: dict[str, int] = field(default_factory=dict)
    due_backlog: CappedCount = CappedCount(0)
    at_risk: int = 0
    breached: int = 0
    pending: int = 0
    held: int = 0
    failed_24h: int = 0

    @property
    def healthy(self) -> bool:
        return not self.stale

    def as_dict(self) -> dict:
        run = self.last_run
        return {
            "status": "ok" if self.healthy else "stale",
            "now": self.now.isoformat(),
            "last_sweep": None
            if run is None
            else {
                "finished_at": run.finished_at.isoformat(),
                "as_of": run.as_of.isoformat(),
                "duration_ms": round(run.duration.total_seconds() * 1000),
                "age_seconds": round((self.now - run.finished_at).total_seconds()),
                "correlation_id": run.correlation_id,
                "fired": self.fired,
            },
            "stale_after_seconds": round(sweep_runs.stale_after().total_seconds()),
            "due_backlog": {"count": self.due_backlog.value, "capped": self.due_backlog.capped},
            "leads": {"at_risk": self.at_risk, "breached": self.breached},
            "notifications": {
                "pending": self.pending,
                "held_for_quiet_hours": self.held,
                "failed_24h": self.failed_24h,
            },
        }


def _capped(queryset) -> CappedCount:
    counted = queryset.order_by()[: CAP + 1].count()
    return CappedCount(min(counted, CAP), counted > CAP)


def collect(*, now: datetime, scope=None) -> Status:
    """The status at `now`; `scope` (a `permissions.Scope`, None = everything) narrows every
    figure but the sweep's own timing to a team lead's teams."""
    run = sweep_runs.last_run()
    status = Status(now=now, last_run=run, stale=sweep_runs.is_stale(run, now))
    everything = scope is None or scope.all_teams
    if run is not None and everything:
        counts = run.counts or {}
        status.fired = {label: counts.get(key, 0) for label, key in RESULT_KEYS.items()}

    def scoped(queryset, team_path):
        return queryset if scope is None else scope.filter(queryset, team_path)

    open_timers = SlaTimer.objects.filter(completed_at__isnull=True)
    status.due_backlog = _capped(scoped(open_timers.filter(next_fire_at__lte=now), "lead__team"))
    stages = scoped(
        open_timers.filter(
            paused_at__isnull=True,
            stage__in=(Stage.WARNED, Stage.BREACHED),
        ),
        "lead__team",
    ).aggregate(
        at_risk=Count("pk", filter=Q(stage=Stage.WARNED)),
        breached=Count("pk", filter=Q(stage=Stage.BREACHED)),
    )
    status.at_risk, status.breached = stages["at_risk"], stages["breached"]
    undelivered = scoped(Notification.objects.filter(status__in=UNDELIVERED), "team").aggregate(
        held=Count(
            "pk",
            filter=Q(status=NotificationStatus.PENDING, attempts=0, next_attempt_at__gt=now),
        ),
        total=Count("pk"),
    )
    status.held = undelivered["held"]
    status.pending = undelivered["total"] - undelivered["held"]
    # Failures in 24 h and, for a team lead, what the last run fired on their teams: one query
    # on the audit log's (kind, occurred_at) and (team, occurred_at) indexes.
    failed = Q(kind=AuditKind.NOTIFICATION_FAILED, occurred_at__gt=now - FAILED_WINDOW)
    wanted, counts = failed, {"failed": Count("pk", filter=failed)}
    if run is not None and not everything:
        of_run = Q(occurred_at=run.as_of, correlation_id=run.correlation_id)
        wanted |= of_run & Q(kind__in=list(sweep_runs.FIRED_KINDS))
        for n, kind in enumerate(sweep_runs.FIRED_KINDS):
            counts[f"fired_{n}"] = Count("pk", filter=of_run & Q(kind=kind))
    events = scoped(AuditEvent.objects.filter(wanted), "team").aggregate(**counts)
    status.failed_24h = events["failed"]
    if run is not None and not everything:
        status.fired = {
            label: events[f"fired_{n}"] for n, label in enumerate(sweep_runs.FIRED_KINDS.values())
        }
    return status


def fired_text(fired: dict[str, int]) -> str:
    parts = [f"{n} {label}" for label, n in fired.items() if n]
    return ", ".join(parts) if parts else "nothing"


def age_text(age: timedelta) -> str:
    """How long ago, on the wall clock: "40 s", "3 min", "2 h 05 min"."""
    seconds = max(int(age.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
