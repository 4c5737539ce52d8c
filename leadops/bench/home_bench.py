"""`manage.py bench home --leads 1000000 --reps 25000 --busy 2000`: building the Slack App Home
tab (a rep's open leads, most urgent first) among a million open leads.

Most reps own `leads / reps` open leads (40 by default, a normal load); one busy rep owns
`--busy` (far past any capacity: the worst case, since the Home sorts all of a rep's open leads
by their SLA status in business time and shows the 25 most urgent). Prints the time and the
number of queries per Home. Runs in a throwaway database."""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime, timedelta

from django.db import connection

from leadops.bench.harness import (
    QueryCounter,
    Stopwatch,
    build_timers,
    profiled,
    throwaway_database,
)

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench home")
    p.add_argument("--leads", type=int, default=1_000_000, help="open leads in all")
    p.add_argument("--reps", type=int, default=25_000, help="reps sharing them")
    p.add_argument("--busy", type=int, default=2000, help="open leads of the one busy rep")
    p.add_argument("--samples", type=int, default=30, help="ordinary reps' Homes built")
    p.add_argument("--profile", action="store_true", help="print a profile of the busy Home")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with throwaway_database() as name:
        print(
            f"home bench on {connection.vendor} ({name}): {args.leads:,} open leads, "
            f"{args.reps:,} reps, one busy rep with {args.busy:,}"
        )
        _run(args)


def _run(args) -> None:
    # Imported here like the other benchmarks: the models load after the throwaway database.
    from escalations.models import SlaPolicy
    from escalations.policies import current_thresholds
    from escalations.slack.home import home_view
    from leadops.models import Source
    from teams.models import Market, Rep, Team

    week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    market = Market.objects.create(code="B", name="Bench", timezone="Asia/Kolkata", hours=week)
    team = Team.objects.create(slug="bench", name="Bench", market=market)
    Rep.objects.bulk_create(
        [
            Rep(name=f"Rep {i}", email=f"r{i}@bench", team=team, slack_user_id=f"U{i}")
            for i in range(args.reps + 1)
        ],
        batch_size=5000,
    )
    reps = list(Rep.objects.order_by("pk"))
    busy, ordinary = reps[0], reps[1:]
    source = Source.objects.create(code="bench", name="Bench")
    policy = SlaPolicy.objects.create(state="NEW", window="1h", clock="calendar")
    thresholds = current_thresholds().as_dict()
    common = {
        "team": team,
        "source": source,
        "policy": policy,
        "thresholds": thresholds,
        "now": NOW - timedelta(minutes=30),
        "due_stage_offset": timedelta(minutes=50),
    }
    with Stopwatch() as built:
        rest = args.leads - args.busy
        build_timers(owners=ordinary, total=rest, due=rest // 3, **common)
        build_timers(owners=[busy], total=args.busy, due=args.busy // 3, **common)
    print(f"  built in {built.seconds:.0f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    step = max(len(ordinary) // args.samples, 1)
    times, queries = [], set()
    for rep in ordinary[::step][: args.samples]:
        counter = QueryCounter()
        with counter.counting(), Stopwatch() as watch:
            view = home_view(rep, now=NOW)
        times.append(watch.seconds * 1000)
        queries.add(counter.count)
    shown = sum(1 for b in view["blocks"] if b["type"] == "actions")
    print(
        f"  ordinary rep ({args.leads // max(args.reps, 1)} leads): median "
        f"{statistics.median(times):.1f} ms, max {max(times):.1f} ms over {len(times)} Homes; "
        f"queries {sorted(queries)}; {shown} leads shown"
    )
    counter = QueryCounter()
    with profiled(args.profile, 25), counter.counting(), Stopwatch() as watch:
        view = home_view(busy, now=NOW)
    shown = sum(1 for b in view["blocks"] if b["type"] == "actions")
    print(
        f"  busy rep ({args.busy:,} leads): {watch.seconds * 1000:.1f} ms, "
        f"{counter.count} queries; {shown} leads shown"
    )
