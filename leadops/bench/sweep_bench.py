"""`manage.py bench sweep --open N --due M`: the sweep over N open timers of which M are due.

Prints the idle sweep (M = 0: time and queries) and then the escalations per second and the
queries per escalation for M due warnings. Runs in a throwaway database."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from django.db import connection

from escalations.models import SlaPolicy
from escalations.policies import current_thresholds
from escalations.sweep import run_sweep
from leadops.bench.harness import (
    QueryCounter,
    Stopwatch,
    build_timers,
    profiled,
    throwaway_database,
)
from leadops.models import Source
from teams.models import Market, Rep, Role, Team

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)  # a Wednesday, inside office hours


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench sweep")
    p.add_argument("--open", type=int, default=100_000, help="open timers (N)")
    p.add_argument("--due", type=int, default=10_000, help="of which due now (M)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--keep", action="store_true", help="keep the benchmark database")
    p.add_argument("--profile", action="store_true", help="print a profile of the due sweep")
    p.add_argument("--queries", action="store_true", help="print the slowest statements")
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="sweep processes running at once (each its own connection)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with throwaway_database(keep=args.keep) as name:
        print(
            f"sweep bench on {connection.vendor} ({name}): N={args.open:,} open timers, "
            f"M={args.due:,} due, batch {args.batch_size}"
        )
        _run(args)


def _run(args) -> None:
    week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    market = Market.objects.create(code="BX", name="Bench", timezone="Europe/Berlin", hours=week)
    team = Team.objects.create(slug="bench", name="Bench", market=market, slack_channel_id="C1")
    Rep.objects.create(name="Manager", email="m@bench", team=team, role=Role.MANAGER)
    owners = [
        Rep.objects.create(
            name=f"Rep {i}", email=f"r{i}@bench", team=team, capacity=10**6, slack_user_id=f"U{i}"
        )
        for i in range(20)
    ]
    source = Source.objects.create(code="bench", name="Bench")
    policy = SlaPolicy.objects.create(state="NEW", window="1h", clock="calendar")
    thresholds = current_thresholds().as_dict()
    with Stopwatch() as built:
        build_timers(
            team=team,
            source=source,
            owners=owners,
            policy=policy,
            thresholds=thresholds,
            now=NOW,
            total=args.open,
            due=args.due,
            due_stage_offset=timedelta(minutes=50),
        )
    print(f"  built {args.open:,} leads and open timers in {built.seconds:.1f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    idle_at = NOW - timedelta(hours=1)  # nothing is due yet
    run_sweep(now=idle_at, batch_size=args.batch_size)  # warm caches and the connection
    counter = QueryCounter()
    timings = []
    for _ in range(5):
        counter.count = 0
        with counter.counting(), Stopwatch() as idle:
            result = run_sweep(now=idle_at, batch_size=args.batch_size)
        assert result.claimed == 0
        timings.append(idle.seconds)
    print(
        f"  idle sweep (M = 0): {min(timings) * 1000:.1f} ms best, "
        f"{sorted(timings)[2] * 1000:.1f} ms median of 5, {counter.count} queries"
    )

    if args.workers > 1:
        _parallel(args)
        return
    counter = QueryCounter(timed=args.queries)
    with profiled(args.profile, 30), counter.counting(), Stopwatch() as busy:
        result = run_sweep(now=NOW, batch_size=args.batch_size, max_batches=10**6)
    fired = result.warned + result.breached
    assert fired == args.due, result.summary()
    for line in counter.slowest() if args.queries else []:
        print(line)
    rate = fired / busy.seconds if busy.seconds else float("inf")
    print(
        f"  due sweep: {fired:,} escalations in {busy.seconds:.2f} s = {rate:,.0f} /s; "
        f"{counter.count} queries = {counter.count / max(fired, 1):.3f} per escalation "
        f"({result.batches} batches)"
    )


def _sweep_until_done(batch_size: int) -> tuple[int, int]:
    from django.db import connections

    fired = batches = 0
    try:
        while True:
            result = run_sweep(now=NOW, batch_size=batch_size, max_batches=10**6)
            fired += result.warned + result.breached
            batches += result.batches
            if not result.claimed:
                return fired, batches
    finally:
        connections.close_all()


def _parallel(args) -> None:
    """N sweep processes at once: SKIP LOCKED hands each its own rows."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # children open their own connections
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool, Stopwatch() as busy:
        results = pool.map(_sweep_until_done, [args.batch_size] * args.workers)
    fired = sum(f for f, _ in results)
    assert fired == args.due, results
    print(
        f"  due sweep with {args.workers} processes: {fired:,} escalations in "
        f"{busy.seconds:.2f} s = {fired / busy.seconds:,.0f} /s "
        f"(per process: {', '.join(f'{f:,}' for f, _ in results)})"
    )
