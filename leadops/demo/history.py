"""A quarter of demo history (for calibration, SPEC §11): leads created through the quarter and
worked through their states by the real verbs, with the clock set to each step's own instant, so
every row (timers, activities, lead history, audit events, reassignments, reverts, outbox rows
and their delivery) is stamped when it happened. The escalation sweep and delivery run at the
instants things fall due, as the scheduler would.

The teams behave differently so that the calibration page has something to say: India answers
paid-social leads late, the APAC desk's leads often reach the reassign stage (one revert among
them), Berlin's owners let warnings run into breaches; the others are mostly on time."""

from __future__ import annotations

import heapq
import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from unittest import mock

import time_machine
from django.contrib.auth import get_user_model
from django.db.models import Min
from django.utils import timezone

from audit.calibration import Period, last_full_quarter
from escalations.models import Reassignment, SlaTimer
from escalations.notify import outbox
from escalations.notify.delivery import deliver_due
from escalations.reassign import ReassignError, revert_reassignment
from escalations.sweep import run_sweep
from leadops import lifecycle
from leadops.models import Lead, LeadState, Source
from teams.models import Team

PREFIX = "hist-"
S = LeadState
# How late each team answers, as a share of the window used: (weight, low, high) ranges.
# < 0.8 on time, 0.8-1 warned, 1-1.5 breached, > 1.5 reassign stage.
PACE = {
    "in-inside": [(5, 0.2, 0.7), (2, 0.85, 0.98), (4, 1.05, 1.45), (1, 1.6, 1.9)],
    "sg-apac": [(4, 0.2, 0.7), (1, 0.85, 0.98), (2, 1.05, 1.45), (4, 1.6, 2.2)],
    "de-berlin": [(3, 0.2, 0.7), (1, 0.85, 0.98), (5, 1.05, 1.45), (1, 1.6, 1.9)],
}
DEFAULT_PACE = [(8, 0.15, 0.7), (2, 0.85, 0.98), (1, 1.05, 1.4)]
LEADS_PER_TEAM = {"in-inside": 20, "sg-apac": 16, "de-berlin": 18}
DEFAULT_LEADS = 7
# What a lead does after each state: the next state, or how the story ends.
NEXT = {
    S.NEW: S.CONTACTED,
    S.CONTACTED: S.QUALIFIED,
    S.QUALIFIED: S.PROPOSAL,
    S.PROPOSAL: S.NEGOTIATION,
    S.NEGOTIATION: S.WON,
}


@dataclass
class HistoryReport:
    leads: int = 0
    sweeps: int = 0
    reverts: int = 0
    existing: int = 0


@contextmanager
def _at(moment: datetime):
    with time_machine.travel(moment, tick=False):
        yield


def _pace(rng: random.Random, team_slug: str) -> float:
    table = PACE.get(team_slug, DEFAULT_PACE)
    weights = [w for w, _, _ in table]
    _, low, high = rng.choices(table, weights=weights)[0]
    return rng.uniform(low, high)


def _answer_at(timer: SlaTimer, share: float) -> datetime:
    """The instant at which `share` of the timer's window is used (between its stage instants,
    on the wall clock)."""
    points = [
        (0.0, timer.running_since),
        (0.8, timer.warn_at),
        (1.0, timer.due_at),
        (1.5, timer.reassign_at),
    ]
    for (s0, t0), (s1, t1) in zip(points, points[1:], strict=False):
        if share <= s1:
            return t0 + (t1 - t0) * ((share - s0) / (s1 - s0))
    s0, t0 = points[-1]
    return t0 + (t0 - timer.running_since) * ((share - s0) / 1.5)


class _Story:
    """One lead's quarter: created, then each state answered at its team's pace."""

    def __init__(self, n, team, market, source, created_at, rng, end):
        self.n, self.team, self.market, self.source = n, team, market, source
        self.created_at, self.rng, self.end = created_at, rng, end
        self.lead = None
        self.stop_after = rng.choice([S.CONTACTED, S.QUALIFIED, S.QUALIFIED, S.PROPOSAL, S.WON])

    def create(self, now):
        self.lead = lifecycle.create_lead(
            name=f"History lead {self.n}",
            company=f"{self.market.name} prospect {self.n}",
            market=self.market,
            source=self.source,
            team=self.team,
            external_id=f"{PREFIX}{self.n:04d}",
        )
        return self._plan(now)

    def _plan(self, now):
        self.lead.refresh_from_db()
        timer = SlaTimer.objects.filter(lead=self.lead, completed_at__isnull=True).first()
        if self.lead.is_closed or timer is None:
            return None
        at = _answer_at(timer, _pace(self.rng, self.team.slug))
        holds = self.lead.state in (S.QUALIFIED, S.PROPOSAL) and now + timedelta(days=3) < self.end
        if holds and self.rng.random() < 0.08:
            return (now + timedelta(hours=2), self.hold)
        if at >= self.end:
            return (self.end - timedelta(minutes=1), self.close)
        return (max(at, now + timedelta(minutes=1)), self.answer)

    def hold(self, now):
        lifecycle.put_on_hold(
            self.lead,
            actor=self.lead.owner,
            reason="Customer travelling",
            resume_at=now + timedelta(days=3),
        )
        return (now + timedelta(days=2), self.resume)

    def resume(self, now):
        self.lead.refresh_from_db()
        if self.lead.on_hold:
            lifecycle.resume(self.lead, actor=self.lead.owner, reason="Customer back")
        return self._plan(now)

    def answer(self, now):
        self.lead.refresh_from_db()
        if self.lead.is_closed:
            return None
        # The owner works the lead (the new one after a reassignment); a lead nobody was free
        # to take is picked up by the first rep of the team.
        owner = self.lead.owner or self.team.reps.filter(role="rep", active=True).first()
        if self.lead.state == S.NEW:
            lifecycle.record_activity(self.lead, "call", actor=owner, notes="First call")
        elif self.lead.state == self.stop_after or self.rng.random() < 0.12:
            lifecycle.transition(self.lead, S.LOST, actor=owner, reason="No budget this year")
            return None
        else:
            lifecycle.transition(self.lead, NEXT[self.lead.state], actor=owner)
        return self._plan(now)

    def close(self, now):
        self.lead.refresh_from_db()
        if not self.lead.is_closed:
            lifecycle.transition(self.lead, S.LOST, actor=None, reason="Went quiet")
        return None


def build_history(
    *, period: Period | None = None, seed: int = 7, leads_per_team: int | None = None
) -> HistoryReport:
    """Build the quarter (default: the last full one) unless it is there already."""
    report = HistoryReport()
    report.existing = Lead.objects.filter(external_id__startswith=PREFIX).count()
    if report.existing:
        return report
    period = period or last_full_quarter(timezone.now())
    rng = random.Random(seed)
    sources = list(Source.objects.order_by("code"))
    teams = list(Team.objects.select_related("market").order_by("slug"))
    ops = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    stories = []
    span = (period.end - period.start - timedelta(days=7)).total_seconds()
    for team in teams:
        for _ in range(leads_per_team or LEADS_PER_TEAM.get(team.slug, DEFAULT_LEADS)):
            created = period.start + timedelta(seconds=rng.uniform(0, span))
            # Mostly paid social and inbound web, as in the seed's markets.
            source = rng.choices(sources, weights=[1, 2, 4, 1][: len(sources)])[0]
            stories.append(
                _Story(len(stories) + 1, team, team.market, source, created, rng, period.end)
            )
    queue = [(s.created_at, i, s.create) for i, s in enumerate(stories)]
    heapq.heapify(queue)
    seq = len(queue)
    clock = period.start  # steps never go back in time (a sweep may run past a planned step)
    reverted = set()
    # Quiet: the console transport would print every message, the sweep and delivery a line
    # each; and the replay delivers at each step itself, so the queue is not woken for it.
    quiet = [
        logging.getLogger(name)
        for name in (
            "escalations.notify.transports",
            "escalations.notify.delivery",
            "escalations.sweep",
            "django-q",
        )
    ]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        with mock.patch.object(outbox, "_wake_delivery", lambda: None):
            while queue:
                next_fire = SlaTimer.objects.filter(
                    completed_at__isnull=True, next_fire_at__isnull=False
                ).aggregate(at=Min("next_fire_at"))["at"]
                if next_fire is not None and next_fire <= queue[0][0]:
                    # The scheduler's sweep, a minute after the instant, then delivery.
                    at = clock = max(next_fire + timedelta(minutes=1), clock)
                    with _at(at):
                        result = run_sweep(now=at)
                        deliver_due(now=at, chain=False)
                    report.sweeps += 1
                    if result.reassigned:
                        report.reverts += _maybe_revert(rng, ops, at, reverted)
                    continue
                at, _, step = heapq.heappop(queue)
                at = clock = max(at, clock)
                with _at(at):
                    follow = step(at)
                    deliver_due(now=at, chain=False)
                if follow is not None:
                    seq += 1
                    heapq.heappush(queue, (follow[0], seq, follow[1]))
    finally:
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
    report.leads = len(stories)
    return report


def _maybe_revert(rng, actor, at, reverted) -> int:
    """Now and then a team lead gives an auto-reassigned lead back (a misfire)."""
    fresh = Reassignment.objects.filter(
        cause="sla", reverted_at__isnull=True, lead__external_id__startswith=PREFIX
    ).exclude(pk__in=reverted)
    done = 0
    for reassignment in fresh.order_by("-at")[:1]:
        reverted.add(reassignment.pk)
        if actor is None or rng.random() > 0.3:
            continue
        with _at(at + timedelta(minutes=20)):
            try:
                revert_reassignment(
                    reassignment,
                    actor=actor,
                    reason="The previous owner already had a meeting booked",
                    now=at + timedelta(minutes=20),
                )
                done += 1
            except ReassignError:
                pass
    return done
