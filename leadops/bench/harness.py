"""Shared by the benchmarks: a throwaway database (never the app's own data), query counting
and a bulk builder for large numbers of leads and timers."""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from escalations.models import SlaTimer
from leadops.models import Lead


@contextlib.contextmanager
def throwaway_database(keep: bool = False):
    """Create a fresh database next to the configured one (test_<name>, or a SQLite file),
    migrate it, run the benchmark in it and drop it afterwards (unless `keep`)."""
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        db.setdefault("TEST", {})["NAME"] = str(settings.BASE_DIR / "bench.sqlite3")
    old_name = db["NAME"]
    # No serialize: it would read a kept database (millions of rows) into memory for nothing.
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=keep, serialize=False)
    try:
        yield connection.settings_dict["NAME"]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=keep)


def add_kept_database_options(parser, reuse: str) -> None:
    """`--keep` and `--reuse` for a benchmark whose database takes minutes to build; `reuse`
    says what a reusing run does (`kept_database` opens the database either way)."""
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help=f"{reuse}, on the database a --keep run left (no build; implies --keep)",
    )


def kept_database(args):
    """`throwaway_database`, kept after a `--keep` or `--reuse` run."""
    return throwaway_database(keep=args.keep or args.reuse)


class QueryCounter:
    """Counts statements sent to the database (cheaper than capturing them); with `timed`, also
    keeps the slowest ones (`slowest()`), to see where database time goes."""

    def __init__(self, timed: bool = False):
        self.count = 0
        self.timed = timed
        self.times: dict[str, list[float]] = {}

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if not self.timed:
            return execute(sql, params, many, context)
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.times.setdefault(sql[:90], []).append(time.perf_counter() - started)

    def slowest(self, n: int = 12) -> list[str]:
        rows = sorted(self.times.items(), key=lambda item: -sum(item[1]))[:n]
        return [f"{sum(t) * 1000:8.1f} ms {len(t):5d}x  {sql}" for sql, t in rows]

    @contextlib.contextmanager
    def counting(self):
        with connection.execute_wrapper(self):
            yield self


@contextlib.contextmanager
def profiled(enabled: bool, lines: int = 30):
    """Profile the block and print the functions that took the most time in themselves."""
    if not enabled:
        yield
        return
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(lines)


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def running_hour_timer(lead, policy, thresholds: dict, *, started: datetime) -> SlaTimer:
    """An unsaved running timer for a NEW lead: a 1 h calendar window from `started`, its stages
    at the thresholds' percentages (the shape bulk loads and fault tests insert directly)."""
    window = timedelta(hours=1)
    warn_at = started + window * thresholds["warn"] / 100
    return SlaTimer(
        lead_id=lead.pk,
        state="NEW",
        owner_id=lead.owner_id,
        policy=policy,
        policy_version=policy.version,
        window="1h",
        clock="calendar",
        thresholds=thresholds,
        window_business=window,
        started_at=started,
        running_since=started,
        warn_at=warn_at,
        due_at=started + window,
        reassign_at=started + window * thresholds["reassign"] / 100,
        stage="pending",
        next_fire_at=warn_at,
        episode=uuid.uuid4(),
        created_at=started,
    )


def build_timers(
    *,
    team,
    source,
    owners,
    policy,
    thresholds: dict,
    now: datetime,
    total: int,
    due: int,
    due_stage_offset: timedelta,
    chunk: int = 5000,
) -> None:
    """Insert `total` NEW leads with open timers, `due` of which have their warning due at `now`
    (the others fire days later). Bypasses the lifecycle on purpose: this is load, not logic."""
    made = 0
    while made < total:
        size = min(chunk, total - made)
        leads = [
            Lead(
                name=f"Bench lead {made + i}",
                company="Bench Co",
                market_id=team.market_id,
                source=source,
                team=team,
                owner=owners[(made + i) % len(owners)],
                state="NEW",
                state_entered_at=now,
                created_at=now,
            )
            for i in range(size)
        ]
        Lead.objects.bulk_create(leads, batch_size=chunk)
        if connection.vendor == "sqlite" or leads[0].pk is None:
            ids = list(Lead.objects.order_by("-pk").values_list("pk", flat=True)[:size])[::-1]
            for lead, pk in zip(leads, ids, strict=True):
                lead.pk = pk
        timers = [
            running_hour_timer(
                lead,
                policy,
                thresholds,
                started=now - due_stage_offset if made + i < due else now + timedelta(days=3),
            )
            for i, lead in enumerate(leads)
        ]
        SlaTimer.objects.bulk_create(timers, batch_size=chunk)
        made += size
