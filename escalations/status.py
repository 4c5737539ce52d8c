"""The operational status (SPEC §10): the admin index's status block and `/healthz` read it.

- the last sweep: when it ran, how long it took, what it fired (for a team lead: on their teams);
- the due backlog now (open timers whose next instant has passed: the sweep is behind);
- open leads at risk and breached now, as the lead list's SLA status filter counts them
  (`explain.status_code`: the running timer warned, or breached), not counting held leads;
- notifications pending (due or retrying), held for quiet hours (not yet tried, released later)
  and failed in the last 24 hours.

Every figure is a capped count on an index, all in one statement (`capped_counts`), so it stays
cheap at a million leads: the partial indexes on open timers (`timer_due_open`,
`timer_open_stage`), on undelivered notifications (`notification_due`), and the audit log's
(kind, occurred_at) index for failures. Past `CAP` the block says "10,000+", which is all an
operator needs to know, where counting 300,000 breached leads exactly would take most of a
second."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connections
from django.db.models import Q, QuerySet

from audit.models import AuditEvent, AuditKind
from escalations import sweep_runs
from escalations.models import Notification, NotificationStatus, SlaTimer, Stage, SweepRun

CAP = 10_000
# A team lead's counts stop earlier: their team's rows are found by walking every team's (the
# timers carry no team), so a count costs up to cap x number of teams index probes. At a million
# leads over ten teams, 10,000 took a second; 1,000 stays under 100 ms.
TEAM_CAP = 1_000
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
    at_risk: CappedCount = CappedCount(0)
    breached: CappedCount = CappedCount(0)
    pending: CappedCount = CappedCount(0)
    held: CappedCount = CappedCount(0)
    failed_24h: CappedCount = CappedCount(0)
    cap: int = CAP

    @property
    def healthy(self) -> bool:
        return not self.stale

    def as_dict(self) -> dict:
        run = self.last_run
        counts = {
            "due_backlog": self.due_backlog,
            "at_risk": self.at_risk,
            "breached": self.breached,
            "pending": self.pending,
            "held_for_quiet_hours": self.held,
            "failed_24h": self.failed_24h,
        }
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
            "due_backlog": self.due_backlog.value,
            "leads": {"at_risk": self.at_risk.value, "breached": self.breached.value},
            "notifications": {
                "pending": self.pending.value,
                "held_for_quiet_hours": self.held.value,
                "failed_24h": self.failed_24h.value,
            },
            # Counts stop at `CAP` (a count past it would cost more than it tells).
            "capped_at": self.cap,
            "capped": sorted(name for name, count in counts.items() if count.capped),
        }


def capped_counts(querysets: dict[str, QuerySet], cap: int | None = None) -> dict[str, CappedCount]:
    """Each queryset's row count, up to `cap` (default `CAP`), all in one statement:
    `SELECT (SELECT COUNT(*) FROM (<rows> LIMIT cap+1)), ...`: every count reads at most
    cap + 1 matching index entries, whatever the size of the table."""
    cap = CAP if cap is None else cap
    parts, params, database = [], [], "default"
    for n, queryset in enumerate(querysets.values()):
        rows = queryset.order_by().values("pk")[: cap + 1]
        sql, row_params = rows.query.sql_with_params()
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS counted_{n})")
        params.extend(row_params)
        database = queryset.db
    with connections[database].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        values = cursor.fetchone()
    return {
        name: CappedCount(min(value, cap), value > cap)
        for name, value in zip(querysets, values, strict=True)
    }


def collect(*, now: datetime, scope=None) -> Status:
    """The status at `now`; `scope` (a `permissions.Scope`, None = everything) narrows every
    figure but the sweep's own timing to a team lead's teams. Two queries: the last run, then
    every count at once."""
    run = sweep_runs.last_run()
    everything = scope is None or scope.all_teams
    status = Status(
        now=now,
        last_run=run,
        stale=sweep_runs.is_stale(run, now),
        cap=CAP if everything else TEAM_CAP,
    )

    def scoped(queryset, team_path):
        return queryset if everything else scope.filter(queryset, team_path)

    open_timers = SlaTimer.objects.filter(completed_at__isnull=True)
    running = open_timers.filter(paused_at__isnull=True)
    held = Q(status=NotificationStatus.PENDING, attempts=0, next_attempt_at__gt=now)
    undelivered = Notification.objects.filter(status__in=UNDELIVERED)
    wanted = {
        "due_backlog": scoped(open_timers.filter(next_fire_at__lte=now), "lead__team"),
        "at_risk": scoped(running.filter(stage=Stage.WARNED), "lead__team"),
        "breached": scoped(running.filter(stage=Stage.BREACHED), "lead__team"),
        "pending": scoped(undelivered.exclude(held), "team"),
        "held": scoped(undelivered.filter(held), "team"),
        "failed_24h": scoped(
            AuditEvent.objects.filter(
                kind=AuditKind.NOTIFICATION_FAILED, occurred_at__gt=now - FAILED_WINDOW
            ),
            "team",
        ),
    }
    if run is not None and not everything:
        # What the last run fired on the team lead's teams, from its audit events.
        of_run = AuditEvent.objects.filter(occurred_at=run.as_of, correlation_id=run.correlation_id)
        for n, kind in enumerate(sweep_runs.FIRED_KINDS):
            wanted[f"fired_{n}"] = scoped(of_run.filter(kind=kind), "team")
    counts = capped_counts(wanted, cap=status.cap)
    for name in ("due_backlog", "at_risk", "breached", "pending", "held", "failed_24h"):
        setattr(status, name, counts[name])
    if run is not None:
        if everything:
            done = run.counts or {}
            status.fired = {label: done.get(key, 0) for label, key in RESULT_KEYS.items()}
        else:
            status.fired = {
                label: counts[f"fired_{n}"].value
                for n, label in enumerate(sweep_runs.FIRED_KINDS.values())
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
