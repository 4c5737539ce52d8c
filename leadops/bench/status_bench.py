"""`manage.py bench status --open N`: the admin index with its status block, and `/healthz`,
over N open leads (spread over teams, a tenth warned, a fifth breached), N/2 notifications
(mostly sent, some pending, some held for quiet hours, some failed) and N/2 audit events.

Prints, per user (superuser, ops manager, team lead), the median of 5 requests and the query
count of the index, and the same for `/healthz`. Runs in a throwaway database."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models.functions import Mod
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent, AuditKind
from escalations.models import Notification, SlaPolicy, SlaTimer
from escalations.policies import current_thresholds
from escalations.sweep import run_sweep
from leadops.bench.harness import (
    QueryCounter,
    Stopwatch,
    add_kept_database_options,
    build_timers,
    kept_database,
)
from leadops.models import Lead, Source
from teams.models import Market, Rep, Role, Team

# The data is built around the real time: the timers fire days later, so the sweep is idle and
# the due backlog is what a healthy system has (none); the block reads the clock itself.
NOW = timezone.now()
TEAMS = 10
CHUNK = 5000


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench status")
    p.add_argument("--open", type=int, default=100_000, help="open leads with timers (N)")
    p.add_argument("--repeat", type=int, default=5, help="requests per page (median shown)")
    p.add_argument("--queries", action="store_true", help="print the slowest statements")
    add_kept_database_options(p, reuse="measure only")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with kept_database(args) as name:
        print(f"status bench on {connection.vendor} ({name}): N={args.open:,} open leads")
        _run(args)


def _progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stdout.write(f"\r  {label:<14} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}")
    if done >= total:
        sys.stdout.write("\n")
    sys.stdout.flush()


def _build(args) -> dict:
    week = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    market = Market.objects.create(code="BX", name="Bench", timezone="Europe/Berlin", hours=week)
    source = Source.objects.create(code="bench", name="Bench")
    policy = SlaPolicy.objects.create(state="NEW", window="1h", clock="calendar")
    thresholds = current_thresholds().as_dict()
    teams = []
    for t in range(TEAMS):
        team = Team.objects.create(slug=f"bench-{t}", name=f"Bench {t}", market=market)
        lead = Rep.objects.create(name=f"Lead {t}", email=f"l{t}@bench", team=team, role=Role.LEAD)
        owners = [
            Rep.objects.create(name=f"Rep {t}.{i}", email=f"r{t}.{i}@bench", team=team)
            for i in range(10)
        ]
        teams.append((team, lead, owners))
    per_team = args.open // TEAMS
    for n, (team, _lead, owners) in enumerate(teams):
        build_timers(
            team=team,
            source=source,
            owners=owners,
            policy=policy,
            thresholds=thresholds,
            now=NOW,
            total=per_team,
            due=0,
            due_stage_offset=timedelta(0),
        )
        _progress("leads", (n + 1) * per_team, per_team * TEAMS)
    # A tenth warned, a fifth breached (by id: spread over the teams).
    SlaTimer.objects.filter(pk__in=_every(10, 3)).update(stage="warned")
    SlaTimer.objects.filter(pk__in=_every(5, 1)).update(stage="breached")
    _notifications(args.open // 2, teams)
    _audit(args.open // 2, teams)
    return {"teams": teams}


def _every(step: int, rest: int):
    return SlaTimer.objects.annotate(slot=Mod("id", step)).filter(slot=rest).values("pk")


def _notifications(total: int, teams) -> None:
    timers = list(SlaTimer.objects.values_list("pk", "lead_id", "lead__team_id")[:total])
    made = 0
    while made < total:
        rows = []
        for i in range(made, min(made + CHUNK, total)):
            timer_id, lead_id, team_id = timers[i % len(timers)]
            status, attempts, next_at = "sent", 1, NOW - timedelta(hours=1)
            if i % 50 == 0:
                status, attempts, next_at = "pending", 0, NOW + timedelta(hours=9)  # held
            elif i % 50 == 1:
                status, attempts, next_at = "pending", 2, NOW - timedelta(minutes=1)
            elif i % 100 == 2:
                status = "failed"
            rows.append(
                Notification(
                    dedupe_key=f"bench:{i}",
                    kind="warning",
                    persona="owner",
                    lead_id=lead_id,
                    timer_id=timer_id,
                    team_id=team_id,
                    status=status,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    created_at=NOW - timedelta(hours=2),
                )
            )
        Notification.objects.bulk_create(rows, batch_size=CHUNK)
        made += len(rows)
        _progress("notifications", made, total)


def _audit(total: int, teams) -> None:
    made = 0
    while made < total:
        rows = []
        for i in range(made, min(made + CHUNK, total)):
            team = teams[i % len(teams)][0]
            kind = AuditKind.NOTIFICATION_FAILED if i % 100 == 0 else AuditKind.SLA_WARNING
            at = NOW - timedelta(minutes=i % 10_000)
            rows.append(AuditEvent(kind=kind, occurred_at=at, recorded_at=at, team_id=team.pk))
        AuditEvent.objects.bulk_create(rows, batch_size=CHUNK)
        made += len(rows)
        _progress("audit events", made, total)


def _users(teams) -> dict:
    User = get_user_model()
    root = User.objects.create_superuser("bench-root", "root@bench", "x")
    ops = User.objects.create_user("bench-ops", "ops@bench", "x", is_staff=True)
    ops.groups.add(Group.objects.get(name="Ops managers"))
    lead = User.objects.create_user("bench-lead", "lead@bench", "x", is_staff=True)
    lead.groups.add(Group.objects.get(name="Team leads"))
    rep = teams[0][1]
    rep.user = lead
    rep.save(update_fields=["user"])
    return {"superuser": root, "ops manager": ops, "team lead": lead}


def _time(client, url: str, repeat: int) -> tuple[float, int, int]:
    client.get(url)  # warm
    timings, counter = [], QueryCounter()
    status = 0
    for _ in range(repeat):
        counter.count = 0
        with counter.counting():
            started = time.perf_counter()
            status = client.get(url).status_code
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), counter.count, status


def _run(args) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    if args.reuse and Team.objects.filter(slug__startswith="bench-").exists():
        print(f"  reusing {Lead.objects.count():,} leads")
        teams = [
            (team, Rep.objects.get(team=team, role=Role.LEAD), None)
            for team in Team.objects.filter(slug__startswith="bench-").order_by("pk")
        ]
        get_user_model().objects.filter(username__startswith="bench-").delete()
    else:
        with Stopwatch() as built:
            teams = _build(args)["teams"]
        print(f"  built in {built.seconds:.1f} s")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
    run_sweep()  # the last run the block shows (nothing is due at the real time now)
    users = _users(teams)
    print(f"  {'page':<10} {'user':<12} {'median ms':>10} {'queries':>8} {'status':>7}")
    for label, user in users.items():
        client = Client()
        client.force_login(user)
        ms, queries, status = _time(client, "/admin/", args.repeat)
        print(f"  {'index':<10} {label:<12} {ms:>10.1f} {queries:>8} {status:>7}")
    ms, queries, status = _time(Client(), "/healthz", args.repeat)
    print(f"  {'healthz':<10} {'-':<12} {ms:>10.1f} {queries:>8} {status:>7}")
    if args.queries:
        for label, user in users.items():
            client = Client()
            client.force_login(user)
            counter = QueryCounter(timed=True)
            with counter.counting():
                client.get("/admin/")
            print(f"  slowest statements of the index, {label}:")
            for line in counter.slowest(6):
                print(f"    {line}")
