"""`manage.py bench report --timers N`: the calibration report over a quarter with N timers, and
the what-if over a part of it holding about `--episodes` episodes.

Builds, in a throwaway database, half as many leads as timers spread over a quarter in three
markets with business hours and holidays, each lead with a NEW and a CONTACTED timer whose
outcomes and audit events follow realistic proportions (warnings, breaches, met late,
auto-reassignments with a new owner's timer in the same episode, reverts, no-candidate events,
cancellations, holds, the stage messages and their delivery). Rows are written with COPY on
PostgreSQL (insert_rows); this is load, not logic."""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audit import calibration
from audit.models import AuditEvent, AuditKind
from escalations import whatif
from escalations.models import SlaPolicy, SlaTimer
from leadops.bench.harness import (
    QueryCounter,
    Stopwatch,
    add_kept_database_options,
    kept_database,
    profiled,
)
from leadops.bulk import allocate_ids, insert_rows
from leadops.models import Lead, Source
from teams.models import Market, Rep, Role, Team

K = AuditKind
QUARTER = calibration.quarter("2026Q3")
HOURS = {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
THRESHOLDS = {"warn": 80, "breach": 100, "reassign": 150, "version": 1}
WINDOWS = {"NEW": timedelta(hours=2), "CONTACTED": timedelta(hours=24)}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="manage.py bench report")
    p.add_argument("--timers", type=int, default=1_000_000, help="timers in the quarter (N)")
    p.add_argument("--episodes", type=int, default=100_000, help="episodes in the what-if")
    add_kept_database_options(p, reuse="time the report only")
    p.add_argument("--profile", action="store_true", help="profile the report and the what-if")
    p.add_argument("--queries", action="store_true", help="print the slowest statements")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    with kept_database(args) as name:
        print(f"report bench on {connection.vendor} ({name}): {args.timers:,} timers in 2026Q3")
        _run(args)


def _org():
    markets, teams, sources, reps = [], [], [], {}
    for code, tz, country in (
        ("DE", "Europe/Berlin", "DE"),
        ("IN", "Asia/Kolkata", "IN"),
        ("US", "America/New_York", "US"),
    ):
        market = Market.objects.create(
            code=code, name=code, timezone=tz, hours=HOURS, holiday_country=country
        )
        markets.append(market)
        team = Team.objects.create(slug=f"t-{code.lower()}", name=f"Team {code}", market=market)
        teams.append(team)
        Rep.objects.create(name=f"Mgr {code}", email=f"m{code}@b", team=team, role=Role.MANAGER)
        reps[team.pk] = [
            Rep.objects.create(name=f"Rep {code}{i}", email=f"r{code}{i}@b", team=team)
            for i in range(8)
        ]
    for code in ("paid_social", "inbound_web", "cold_list", "partner_referral"):
        sources.append(Source.objects.create(code=code, name=code))
    policies = {
        state: SlaPolicy.objects.create(state=state, window=f"{int(w.total_seconds()) // 3600}h")
        for state, w in WINDOWS.items()
    }
    return markets, teams, sources, reps, policies


def _build(total_timers: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    markets, teams, sources, reps, policies = _org()
    span = (QUARTER.end - QUARTER.start).total_seconds() - 3 * 86400
    leads_total = total_timers // 2
    chunk = 20_000
    made = timers_made = events_made = 0
    started = time.perf_counter()
    while made < leads_total:
        size = min(chunk, leads_total - made)
        with transaction.atomic():
            lead_ids = allocate_ids(Lead, size)
            leads, timers, events = [], [], []
            pending = []
            for lead_id in lead_ids:
                team = teams[rng.randrange(len(teams))]
                owners = reps[team.pk]
                owner = owners[rng.randrange(len(owners))]
                source = sources[min(rng.randrange(6), 3)]
                at = QUARTER.start + timedelta(seconds=rng.uniform(0, span))
                leads.append(
                    {
                        "id": lead_id,
                        "name": f"Bench lead {lead_id}",
                        "company": "Bench Co",
                        "email": "",
                        "phone": "",
                        "hold_reason": "",
                        "on_hold": False,
                        "market_id": team.market_id,
                        "source_id": source.pk,
                        "team_id": team.pk,
                        "owner_id": owner.pk,
                        "state": "QUALIFIED",
                        "state_entered_at": at,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                for state in ("NEW", "CONTACTED"):
                    at = _timer(
                        rng, pending, lead_id, team, owner, owners, policies[state], state, at
                    )
            timer_ids = allocate_ids(SlaTimer, len(pending))
            for (timer, timer_events), timer_id in zip(pending, timer_ids, strict=True):
                timer["id"] = timer_id
                timers.append(timer)
                for event in timer_events:
                    event["timer_id"] = timer_id
                    events.append(event)
            insert_rows(Lead, leads, include_pk=True)
            insert_rows(SlaTimer, timers, include_pk=True)
            insert_rows(AuditEvent, events)
        made += size
        timers_made += len(timers)
        events_made += len(events)
        rate = made / (time.perf_counter() - started)
        print(
            f"\r  built {made:,} leads, {timers_made:,} timers, {events_made:,} audit events "
            f"({rate:,.0f} leads/s)",
            end="",
            flush=True,
        )
    print()


def _timer(rng, pending, lead_id, team, owner, owners, policy, state, at):
    """One episode: a timer (and, after an auto-reassignment, the new owner's timer), with its
    audit events; returns when the lead left the state."""
    window = WINDOWS[state]
    episode = uuid.uuid4()
    roll = rng.random()
    # Business time used when the answer came, as a share of the window.
    share = (
        rng.uniform(0.1, 0.79)
        if roll < 0.6
        else rng.uniform(0.8, 0.99)
        if roll < 0.72
        else rng.uniform(1.0, 1.49)
        if roll < 0.86
        else rng.uniform(1.5, 2.5)
        if roll < 0.94
        else -1.0  # cancelled (left the state without progress)
    )

    # Business time is not modelled here (the report reads `elapsed` from the log): wall
    # clock = business time × 2.5 on average, enough for realistic instants.
    def wall(fraction):
        return at + window * fraction * 2.5

    def event(kind, when, **extra):
        extra.setdefault("timer_started_at", at)
        return {
            "kind": kind,
            "occurred_at": when,
            "recorded_at": when,
            "actor_name": "system",
            "correlation_id": "",
            "lead_id": lead_id,
            "team_id": team.pk,
            "owner_id": owner.pk,
            "lead_label": f"Bench lead {lead_id}",
            "owner_name": owner.name,
            "state": state,
            "policy_id": policy.pk,
            "policy_version": 1,
            "thresholds": THRESHOLDS,
            "window": policy.window,
            "details": {},
            "elapsed": None,
            "stage_due_at": None,
            "actor_user_id": None,
            **extra,
        }

    def sent(when, persona, kind):
        return event(
            K.NOTIFICATION_SENT,
            when + timedelta(seconds=30),
            details={"kind": kind, "persona": persona, "channel": "slack"},
        )

    def timer_row(start, stage, outcome, completed, episode_owner, reassigns=0):
        return {
            "lead_id": lead_id,
            "state": state,
            "owner_id": episode_owner.pk,
            "policy_id": policy.pk,
            "policy_version": 1,
            "window": policy.window,
            "clock": "business",
            "thresholds": THRESHOLDS,
            "window_business": window,
            "started_at": start,
            "warn_at": start + window * 0.8 * 2.5,
            "due_at": start + window * 2.5,
            "reassign_at": start + window * 1.5 * 2.5,
            "stage": stage,
            "next_fire_at": None,
            "running_since": start,
            "consumed": timedelta(0),
            "paused_total": timedelta(0),
            "episode": episode,
            "episode_owner_ids": [],
            "auto_reassign_count": reassigns,
            "error_count": 0,
            "last_error": "",
            "completed_at": completed,
            "outcome": outcome,
            "created_at": start,
        }

    events = []
    if share < 0:
        end = wall(0.3)
        events.append(event(K.SLA_CANCELLED, end, details={"outcome": "cancelled"}))
        pending.append((timer_row(at, "pending", "cancelled", end, owner), events))
        return end
    if share >= 0.8:
        events += [event(K.SLA_WARNING, wall(0.8)), sent(wall(0.8), "owner", "warning")]
    if share >= 1.0:
        events += [event(K.SLA_BREACH, wall(1.0)), sent(wall(1.0), "manager", "breach")]
    if share < 1.5:
        end = wall(share)
        outcome = "met" if share <= 1.0 else "met_late"
        events.append(event(K.SLA_MET, end, elapsed=window * share, details={"outcome": outcome}))
        stage = "pending" if share < 0.8 else "warned" if share < 1.0 else "breached"
        pending.append((timer_row(at, stage, outcome, end, owner), events))
        return end
    # The reassign stage: most often a new owner, sometimes nobody free; some are reverted.
    moved = wall(1.5)
    if rng.random() < 0.15:
        events.append(event(K.REASSIGN_NO_CANDIDATE, moved))
        end = wall(share)
        events.append(
            event(K.SLA_MET, end, elapsed=window * share, details={"outcome": "met_late"})
        )
        pending.append((timer_row(at, "reassigned", "met_late", end, owner), events))
        return end
    events.append(event(K.SLA_BREACH_AUTO_REASSIGN, moved, elapsed=window * 1.5))
    pending.append((timer_row(at, "reassigned", "reassigned", moved, owner), events))
    new_owner = owners[(owners.index(owner) + 1) % len(owners)]
    rest = share - 1.5
    end = moved + window * rest * 2.5
    second = []
    if rng.random() < 0.1:  # reverted: the new owner's timer ends 20 minutes later
        end = moved + timedelta(minutes=20)
        second.append(event(K.REASSIGNMENT_REVERTED, end, timer_started_at=moved))
        pending.append((timer_row(moved, "pending", "reassigned", end, new_owner, 1), second))
        return end
    second.append(
        event(
            K.SLA_MET,
            end,
            elapsed=window * rest,
            timer_started_at=moved,
            owner_id=new_owner.pk,
            details={"outcome": "met"},
        )
    )
    pending.append((timer_row(moved, "pending", "met", end, new_owner, 1), second))
    return end


def _run(args) -> None:
    if args.reuse and SlaTimer.objects.exists():
        print("  reusing the kept database (no build)")
    else:
        with Stopwatch() as built:
            _build(args.timers)
        print(f"  built in {built.seconds:.0f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counts = (SlaTimer.objects.count(), AuditEvent.objects.count())
    print(f"  {counts[0]:,} timers, {counts[1]:,} audit events")
    now = timezone.now()

    calibration.build_report(QUARTER, now=now)  # warm up
    timings = []
    counter = QueryCounter(timed=args.queries)
    for i in range(3):
        counter.count = 0
        with profiled(args.profile and i == 0), counter.counting(), Stopwatch() as report_time:
            report = calibration.build_report(QUARTER, now=now)
        timings.append(report_time.seconds)
    for line in counter.slowest() if args.queries else []:
        print(line)
    breaches = sum(row["breached"] for row in report.by_source)
    print(
        f"  calibration report, whole quarter: {sorted(timings)[1]:.2f} s median of 3 "
        f"({min(timings):.2f} best), {counter.count} queries; {breaches:,} breaches, "
        f"{len(report.findings)} findings"
    )

    period = _period_with(args.episodes)
    draft = whatif.Draft(
        (
            whatif.DraftPolicy("NEW", None, None, "1h"),
            whatif.DraftPolicy("CONTACTED", None, None, "24h"),
        ),
        {"warn": 80, "breach": 100, "reassign": 150},
    )
    with profiled(args.profile), Stopwatch() as whatif_time:
        result = whatif.replay(period, draft, now=now)
    changed = result.changed_total
    print(
        f"  what-if ({period.label}): {result.episodes:,} episodes in "
        f"{whatif_time.seconds:.2f} s ({result.episodes / whatif_time.seconds:,.0f} episodes/s); "
        f"{changed:,} leads would change"
    )


def _period_with(episodes: int) -> calibration.Period:
    """From the quarter's start, enough whole days to hold about `episodes` episodes."""
    starts = (
        SlaTimer.objects.filter(auto_reassign_count=0)
        .order_by("started_at")
        .values_list("started_at", flat=True)
    )
    total = starts.count()
    if episodes >= total:
        return QUARTER
    last = starts[episodes - 1].astimezone(UTC)
    day = datetime(last.year, last.month, last.day, tzinfo=UTC)
    return calibration.date_range(QUARTER.start.date(), (day - timedelta(days=1)).date())
