"""`manage.py bench reassign --reps 1000 --teams 50 --leads 2000`: auto-reassignments per second.

Every lead sits at its 150 % instant; the sweep finds a candidate among the team's reps
(working hours, time off, capacity with row locks, fair pick), moves the lead, writes the
history, the `Reassignment`, the audit event and three outbox rows, and starts a fresh timer.
Runs in a throwaway database."""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection

from escalations.models import SlaPolicy, SlaTimer
from escalations.policies import current_thresholds
from escalations.sweep import run_sweep
from leadops.bench.harness import QueryCounter, Stopwatch, profiled, throwaway_database
from leadops.models import Lead, Source
from teams.models import Market, Rep, Role, Team, TimeOff

NOW = datetime(2026, 12, 2, 11, 0, tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench reassign")
    p.add_argument("--reps", type=int, default=1000)
    p.add_argument("--teams", type=int, default=50)
    p.add_argument("--leads", type=int, default=2000, help="leads due for reassignment")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--profile", action="store_true", help="print a profile of the sweep")
    p.add_argument("--queries", action="store_true", help="print the slowest statements")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with throwaway_database() as name:
        print(
            f"reassign bench on {connection.vendor} ({name}): {args.reps:,} reps in "
            f"{args.teams} teams, {args.leads:,} leads at 150 %"
        )
        _run(args)


def _run(args) -> None:
    week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    zones = ["Asia/Kolkata", "America/New_York", "Europe/Berlin", "Asia/Singapore", "Asia/Dubai"]
    markets = [
        Market.objects.create(code=f"B{i}", name=f"Bench {i}", timezone=zone, hours=week)
        for i, zone in enumerate(zones)
    ]
    teams = [
        Team.objects.create(
            slug=f"bench-{i}",
            name=f"Bench team {i}",
            market=markets[i % len(markets)],
            slack_channel_id=f"C{i}",
        )
        for i in range(args.teams)
    ]
    per_team = args.reps // args.teams
    reps_by_team = {}
    for team in teams:
        Rep.objects.create(
            name=f"Manager {team.pk}", email=f"m{team.pk}@bench", team=team, role=Role.MANAGER
        )
        reps_by_team[team.pk] = Rep.objects.bulk_create(
            [
                Rep(
                    name=f"Rep {team.pk}-{i}",
                    email=f"r{team.pk}-{i}@bench",
                    team=team,
                    capacity=10**5,
                    slack_user_id=f"U{team.pk}x{i}",
                )
                for i in range(per_team - 1)
            ]
        )
    if connection.vendor == "sqlite":
        for team in teams:
            reps_by_team[team.pk] = list(Rep.objects.filter(team=team, role=Role.REP))
    some = [reps[0] for reps in reps_by_team.values()]  # one rep per team is on PTO
    TimeOff.objects.bulk_create(
        [TimeOff(rep=r, start=NOW - timedelta(days=1), end=NOW + timedelta(days=1)) for r in some]
    )
    source = Source.objects.create(code="bench", name="Bench")
    policy = SlaPolicy.objects.create(state="NEW", window="1h", clock="calendar")
    thresholds = current_thresholds().as_dict()
    started = NOW - timedelta(minutes=95)
    for i in range(args.leads):
        team = teams[i % len(teams)]
        owner = reps_by_team[team.pk][1 + i % (per_team - 2)]
        lead = Lead.objects.create(
            name=f"Lead {i}",
            company="Bench",
            market=team.market,
            source=source,
            team=team,
            owner=owner,
            state="NEW",
            state_entered_at=started,
            created_at=started,
        )
        SlaTimer.objects.create(
            lead=lead,
            state="NEW",
            owner=owner,
            policy=policy,
            policy_version=1,
            window="1h",
            clock="calendar",
            thresholds=thresholds,
            window_business=timedelta(hours=1),
            started_at=started,
            running_since=started,
            warn_at=started + timedelta(minutes=48),
            due_at=started + timedelta(hours=1),
            reassign_at=started + timedelta(minutes=90),
            stage="breached",
            next_fire_at=started + timedelta(minutes=90),
            episode=uuid.uuid4(),
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counter = QueryCounter(timed=args.queries)
    with profiled(args.profile, 25), counter.counting(), Stopwatch() as watch:
        result = run_sweep(now=NOW, batch_size=args.batch_size, max_batches=10**6)
    assert result.reassigned == args.leads, result.summary()
    for line in counter.slowest() if args.queries else []:
        print(line)
    rate = result.reassigned / watch.seconds
    print(
        f"  {result.reassigned:,} reassignments in {watch.seconds:.2f} s = {rate:,.0f} /s; "
        f"{counter.count} queries in {result.batches} batches of up to {args.batch_size}"
    )
