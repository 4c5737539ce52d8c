"""Benchmark of outbox delivery: messages per second through the real delivery path (claim with
compare-and-set, render Block Kit, send in NOTIFY_CONCURRENCY threads, record + audit) against a
fake Slack Web API on 127.0.0.1 (in a process of its own) that answers every request after a
fixed latency.

    python manage.py bench delivery [--messages 1000] [--reps 500] [--concurrency N]
                                    [--latency-ms 50] [--batch-size N] [--profile]

Each rep is one Slack destination (a DM); messages to one destination go out in order and at
most at Slack's per-channel rate (NOTIFY_RATE_*), so the figure needs many destinations, as a
real sweep has (one DM per owner).

It runs in a throwaway database (test_<name> on PostgreSQL, a SQLite file otherwise) created,
migrated and dropped by the run, like the other benchmarks: the app's data is never touched.
Each batch commits as in production, so the figure includes one commit per NOTIFY_BATCH_SIZE.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from datetime import timedelta

from escalations import timers
from escalations.models import MessageKind, Notification, Persona, SlaPolicy, Stage
from escalations.notify.delivery import deliver_due
from leadops.bench.fake_slack_process import FakeSlackProcess
from leadops.bench.harness import profiled, throwaway_database
from leadops.models import Lead, LeadState, Source
from teams.models import Market, Rep, Role, Team


def _setup_django() -> None:
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadops.settings")
        import django

        django.setup()


def _parse(argv):
    from django.conf import settings

    parser = argparse.ArgumentParser(prog="delivery_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1000, help="outbox rows to deliver")
    parser.add_argument("--reps", type=int, default=500, help="owners: one Slack DM each")
    parser.add_argument("--profile", action="store_true", help="print a profile of the run")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=settings.NOTIFY_CONCURRENCY,
        help="sending threads (default: NOTIFY_CONCURRENCY)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="fake Slack latency per request"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=settings.NOTIFY_BATCH_SIZE,
        help="rows per deliver_due call (default: NOTIFY_BATCH_SIZE)",
    )
    args = parser.parse_args(argv)
    if min(args.messages, args.reps, args.concurrency, args.batch_size) < 1 or args.latency_ms < 0:
        parser.error("counts must be positive and the latency not negative")
    return args


def _populate(count: int, now, reps: int = 10):
    """A throwaway market open around the clock, a team of `reps` reps, a 4 h policy, `count`
    leads with running timers and one due warning each."""
    tag = uuid.uuid4().hex[:6]
    market = Market.objects.create(
        code=f"B{tag}",
        name=f"Bench {tag}",
        timezone="Europe/Berlin",
        hours={day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
    team = Team.objects.create(
        slug=f"bench-{tag}", name=f"Bench team {tag}", market=market, slack_channel_id=f"CB{tag}"
    )
    Rep.objects.create(
        name="Bench Manager",
        email=f"manager-{tag}@bench.invalid",
        team=team,
        role=Role.MANAGER,
        slack_user_id=f"UBM{tag}",
    )
    reps = Rep.objects.bulk_create(
        [
            Rep(
                name=f"Bench Rep {n}",
                email=f"rep{n}-{tag}@bench.invalid",
                team=team,
                slack_user_id=f"UB{n}x{tag}",
                capacity=count,
            )
            for n in range(reps)
        ]
    )
    source, _ = Source.objects.get_or_create(code="bench", defaults={"name": "Benchmark"})
    SlaPolicy.objects.create(state=LeadState.NEW, market=market, window="4h")
    started = now - timedelta(hours=3, minutes=12)
    leads = Lead.objects.bulk_create(
        [
            Lead(
                name=f"Bench Lead {n}",
                company=f"Company {n % 97}",
                phone="+49 30 1234567",
                market=market,
                source=source,
                team=team,
                owner=reps[n % len(reps)],
                state=LeadState.NEW,
                state_entered_at=started,
                created_at=started,
            )
            for n in range(count)
        ],
        batch_size=500,
    )
    rows = []
    for n, lead in enumerate(leads):
        timer = timers.start_timer(lead, now=started)
        rows.append(
            Notification(
                dedupe_key=f"bench:{tag}:{n}",
                kind=MessageKind.WARNING,
                persona=Persona.OWNER,
                lead=lead,
                team=team,
                timer=timer,
                stage=Stage.WARNED,
                recipient=lead.owner,
                next_attempt_at=now,
                created_at=now,
                context={
                    "stage": Stage.WARNED,
                    "fired_at": now.isoformat(),
                    "stage_due_at": timer.warn_at.isoformat(),
                    "due_at": timer.due_at.isoformat(),
                    "elapsed_seconds": int((now - started).total_seconds()),
                    "window": timer.window,
                    "state": lead.state,
                    "owner_id": lead.owner_id,
                },
            )
        )
    Notification.objects.bulk_create(rows, batch_size=500)


def main(argv=None) -> int:
    _setup_django()

    args = _parse(argv)
    with throwaway_database():
        return _run(args)


def _run(args) -> int:
    from django.db import connection
    from django.test.utils import override_settings
    from django.utils import timezone

    logging.getLogger("escalations").setLevel(logging.WARNING)
    now = timezone.now()
    fake = FakeSlackProcess(latency=args.latency_ms / 1000)
    with (
        fake,
        override_settings(
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_API_URL=fake.url,
            TEAMS_ENABLED=False,
            EMAIL_ENABLED=False,
            NOTIFY_CONCURRENCY=args.concurrency,
            NOTIFY_BATCH_SIZE=args.batch_size,
        ),
    ):
        setup_started = time.perf_counter()
        _populate(args.messages, now, args.reps)
        setup_seconds = time.perf_counter() - setup_started
        sent = failed = calls = 0
        started = time.perf_counter()
        with profiled(args.profile):
            while True:
                result = deliver_due(now=now, chain=False)
                if not result.claimed:
                    break
                calls += 1
                sent += result.sent
                failed += result.failed + result.retrying
        elapsed = time.perf_counter() - started
    delivered = fake.delivered

    rate = sent / elapsed if elapsed else 0.0
    print(
        f"delivery: {sent:,} messages in {elapsed:.1f} s = {rate:,.0f} msg/s "
        f"(concurrency {args.concurrency}, fake Slack {args.latency_ms:g} ms, "
        f"{min(args.reps, args.messages)} destinations)"
    )
    print(
        f"  {calls} batches of up to {args.batch_size}, {failed} not sent, "
        f"{delivered:,} received by the fake server; {connection.vendor}; "
        f"setup {setup_seconds:.1f} s"
    )
    return 0 if sent == args.messages == delivered else 1


if __name__ == "__main__":
    sys.exit(main())
