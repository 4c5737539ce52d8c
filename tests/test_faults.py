"""Fault tests on PostgreSQL with several processes, each on its own connection (issue 14):
concurrent sweeps through every stage, sweeps killed mid-batch. (SQLite has one writer at a
time: none of this can happen there.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.db.models import Count, Q

from audit.models import AuditEvent
from escalations.models import Notification, Reassignment, SlaPolicy, SlaTimer
from escalations.policies import current_thresholds
from escalations.schedule import install_schedules
from leadops.bench.harness import running_hour_timer
from leadops.models import OPEN_STATES, Lead, Source
from teams.models import Market, Rep, Role, Team
from tests.conftest import postgres_transactional
from tests.factories import make_lead

pytestmark = postgres_transactional("several processes, row locks, SKIP LOCKED")

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # every timer starts here: 1 h window
WARN_NOW = T0 + timedelta(minutes=50)  # 83 %
BREACH_NOW = T0 + timedelta(minutes=65)  # 108 %
REASSIGN_NOW = T0 + timedelta(minutes=95)  # 158 %
WEEK = {d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        f"/{db['NAME']}"
    )


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SLACK_BOT_TOKEN")}
    env.update(
        DATABASE_URL=_database_url(),
        DJANGO_SETTINGS_MODULE="leadops.settings",
        Q_SYNC="false",  # delivery is woken through the ORM broker, not run inline
        DATABASE_CONN_MAX_AGE="0",
    )
    return env


def _start_sweep(now: datetime, batch_size: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sweep_process", now.isoformat(), str(batch_size)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sweeps(n: int, now: datetime, batch_size: int) -> list[dict]:
    """n sweep processes started together; their results (each must succeed)."""
    processes = [_start_sweep(now, batch_size) for _ in range(n)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def _deadlocks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _org(*, teams: int, reps_per_team: int, capacity: int) -> list[list[Rep]]:
    market = Market.objects.create(code="FT", name="Fault test", timezone="UTC", hours=WEEK)
    SlaPolicy.objects.create(state="NEW", window="1h")
    by_team = []
    for t in range(teams):
        team = Team.objects.create(
            slug=f"fault-{t}", name=f"Fault team {t}", market=market, slack_channel_id=f"CF{t}"
        )
        Rep.objects.create(
            name=f"Manager {t}", email=f"m{t}@fault.invalid", team=team, role=Role.MANAGER
        )
        by_team.append(
            Rep.objects.bulk_create(
                [
                    Rep(
                        name=f"Rep {t}.{n}",
                        email=f"r{t}.{n}@fault.invalid",
                        team=team,
                        capacity=capacity,
                        slack_user_id=f"UF{t}x{n}",
                    )
                    for n in range(reps_per_team)
                ]
            )
        )
    return by_team


def _leads(by_team: list[list[Rep]], total: int, *, from_previous_team: int = 10) -> None:
    """`total` NEW leads in blocks per team, each with a running 1 h timer (warning at 80 %,
    breach at 100 %, reassignment at 150 %). A team's timers start a second after the previous
    team's, so a sweep's batch holds one or two teams; one lead in `from_previous_team` is owned
    by a rep of the previous team (a rep who moved), so a batch names reps it does not lock."""
    source = Source.objects.create(code="fault", name="Fault test")
    thresholds = current_thresholds().as_dict()
    policy = SlaPolicy.objects.get()
    per_team = -(-total // len(by_team))
    leads, starts = [], []
    for n in range(total):
        t, i = divmod(n, per_team)
        reps = by_team[t]
        owner = reps[i % len(reps)]
        if from_previous_team and i % from_previous_team == 0:
            owner = by_team[t - 1][i % len(by_team[t - 1])]
        leads.append(
            Lead(
                name=f"Fault lead {n}",
                company="Fault Co",
                market_id=reps[0].team.market_id,
                source=source,
                team_id=reps[0].team_id,
                owner=owner,
                state="NEW",
                state_entered_at=T0,
                created_at=T0,
            )
        )
        starts.append(T0 + timedelta(seconds=t))
    Lead.objects.bulk_create(leads, batch_size=2000)
    SlaTimer.objects.bulk_create(
        [
            running_hour_timer(lead, policy, thresholds, started=start)
            for lead, start in zip(leads, starts, strict=True)
        ],
        batch_size=2000,
    )


def _assert_every_stage_once(total: int) -> None:
    per_timer = Counter(
        AuditEvent.objects.filter(
            kind__in=["sla_warning", "sla_breach", "sla_breach_auto_reassign"]
        ).values_list("timer_id", "kind")
    )
    assert set(per_timer.values()) == {1}, "a stage fired twice"
    kinds = Counter(kind for _, kind in per_timer)
    assert kinds == {"sla_warning": total, "sla_breach": total, "sla_breach_auto_reassign": total}
    assert Reassignment.objects.count() == total
    assert Notification.objects.filter(kind="warning").count() == total
    assert Notification.objects.filter(kind="breach").count() == total
    assert not SlaTimer.objects.filter(error_count__gt=0).exists()


def _assert_nobody_over_capacity() -> None:
    loads = Rep.objects.annotate(
        load=Count("leads", filter=Q(leads__state__in=list(OPEN_STATES)))
    ).values_list("name", "load", "capacity", "role")
    over = [
        (name, load, cap) for name, load, cap, role in loads if role != "manager" and load > cap
    ]
    assert over == []


def test_four_sweep_processes_fire_every_stage_once_over_5000_timers_without_deadlock():
    total = 5000
    by_team = _org(teams=20, reps_per_team=15, capacity=40)  # 12,000 slots for 5,000 leads
    _leads(by_team, total)
    deadlocks_before = _deadlocks()

    # A late sweep: every timer crosses its warning, breach and reassignment in one batch, so
    # each transaction writes stage rows naming reps and then locks reps to reassign.
    results = _sweeps(4, REASSIGN_NOW, batch_size=300)

    assert _deadlocks() == deadlocks_before, "PostgreSQL detected a deadlock"
    assert sum(r["errors"] for r in results) == 0
    assert sum(r["fallbacks"] for r in results) == 0, "a batch fell back to lead by lead"
    assert sum(r["warned"] for r in results) == total
    assert sum(r["breached"] for r in results) == total
    assert sum(r["reassigned"] for r in results) == total
    assert sum(r["no_candidate"] + r["skipped_locked"] for r in results) == 0
    busy = [r for r in results if r["reassigned"]]
    assert len(busy) >= 2, "the reassigning sweeps did not overlap"
    _assert_every_stage_once(total)
    _assert_nobody_over_capacity()


def _assert_consistent(total_timers: list[int]) -> None:
    """Whatever a killed sweep left: each stage at most once, with its outbox rows; a lead
    has one open timer; a timer's stage says what its events say."""
    events = Counter(
        AuditEvent.objects.filter(timer_id__in=total_timers).values_list("timer_id", "kind")
    )
    assert set(events.values()) <= {1}, "a stage fired twice"
    stages = dict(SlaTimer.objects.filter(pk__in=total_timers).values_list("pk", "stage"))
    expected = {
        "pending": set(),
        "warned": {"sla_warning"},
        "breached": {"sla_warning", "sla_breach"},
        "reassigned": {"sla_warning", "sla_breach", "sla_breach_auto_reassign"},
    }
    fired = {pk: set() for pk in total_timers}
    for (pk, kind), _ in events.items():
        if kind in expected["reassigned"]:
            fired[pk].add(kind)
    for pk, stage in stages.items():
        assert fired[pk] == expected[stage], (pk, stage, fired[pk])
    outbox = Counter(
        Notification.objects.filter(timer_id__in=total_timers).values_list("timer_id", "kind")
    )
    for pk, kinds in fired.items():
        assert ("sla_warning" in kinds) == (outbox[(pk, "warning")] == 1)
        assert ("sla_breach" in kinds) == (outbox[(pk, "breach")] == 1)
        reassigned = "sla_breach_auto_reassign" in kinds
        assert reassigned == (outbox[(pk, "reassigned_to")] == 1)
    assert Reassignment.objects.count() == sum(
        "sla_breach_auto_reassign" in kinds for kinds in fired.values()
    )
    open_timers = Counter(
        SlaTimer.objects.filter(completed_at__isnull=True).values_list("lead_id", flat=True)
    )
    assert set(open_timers.values()) == {1}
    assert len(open_timers) == Lead.objects.count()


def test_a_sweep_killed_mid_batch_five_times_leaves_consistent_state_and_the_next_completes():
    total = 2000
    by_team = _org(teams=4, reps_per_team=20, capacity=60)
    _leads(by_team, total, from_previous_team=0)
    timers = list(SlaTimer.objects.values_list("pk", flat=True))
    killed_mid_run = 0

    for kill in range(5):
        fired_before = AuditEvent.objects.count()
        process = _start_sweep(REASSIGN_NOW, batch_size=100)
        assert process.stdout.readline().strip() == "ready"
        # Killed by progress, not by the clock (a faster machine finished a sweep before a
        # fixed sleep ran out): once a batch of this sweep has committed, a little later each
        # time, in the middle of the next batch.
        deadline = time.monotonic() + 60
        while AuditEvent.objects.count() == fired_before and process.poll() is None:
            assert time.monotonic() < deadline, "the sweep committed no batch in 60 s"
            time.sleep(0.01)
        time.sleep(0.05 * kill)
        killed_mid_run += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        _assert_consistent(timers)

    assert killed_mid_run == 5, "a sweep finished before it could be killed"
    left = SlaTimer.objects.filter(pk__in=timers, completed_at__isnull=True).count()
    assert 0 < left < total, "the killed sweeps should have committed some batches, not all"

    [result] = _sweeps(1, REASSIGN_NOW, batch_size=100)

    assert result["errors"] == 0
    assert result["claimed"] == left
    _assert_consistent(timers)
    _assert_every_stage_once(total)
    _assert_nobody_over_capacity()


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis: REDIS_URL=redis://...")
def test_a_real_cluster_through_redis_sweeps_on_schedule_and_delivers_the_warning(fake_slack):
    """A lead is created; the django-q2 cluster (a `qcluster` process on Redis, not sync) runs
    the scheduled sweep, which warns; the wake-up on commit goes through Redis and the cluster
    delivers the warning to (fake) Slack."""
    [reps] = _org(teams=1, reps_per_team=1, capacity=10)
    source = Source.objects.create(code="fault", name="Fault test")
    now = datetime.now(UTC)
    with time_machine.travel(now - timedelta(minutes=55), tick=False):
        lead = make_lead(team=reps[0].team, source=source, owner=reps[0], name="Cluster Lead")
    timer = SlaTimer.objects.get(lead=lead)
    assert timer.warn_at <= now < timer.due_at
    install_schedules()
    env = _env()
    env.update(
        REDIS_URL=os.environ["REDIS_URL"],
        Q_NAME=f"leadops-fault-{uuid.uuid4().hex[:8]}",  # its own queue in Redis
        Q_WORKERS="1",
        SLACK_BOT_TOKEN="xoxb-cluster-test",
        SLACK_SIGNING_SECRET="cluster-test-secret",
        SLACK_API_URL=fake_slack.url,
    )
    cluster = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 55  # the cluster looks at schedules every 30 s
        while time.monotonic() < deadline and not fake_slack.delivered:
            assert cluster.poll() is None, cluster.stderr.read()[-3000:]
            time.sleep(0.5)
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cluster.kill()
            cluster.wait()

    [post] = fake_slack.delivered
    assert post["channel"] == reps[0].slack_user_id
    assert post["text"].startswith("SLA warning: Cluster Lead")
    assert post["metadata"]["event_payload"]["key"] == f"timer:{timer.pk}:warned:owner"
    warning = Notification.objects.get(lead=lead, kind="warning")
    assert (warning.status, warning.channel) == ("sent", "slack")
    assert AuditEvent.objects.filter(kind="sla_warning", lead=lead).count() == 1
    timer.refresh_from_db()
    assert timer.stage == "warned"
