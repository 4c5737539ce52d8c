"""Benchmark of the business calendar engine: SLA plans per second on one core.

One plan = three `add` calls at 80 / 100 / 150 % of a window; a business-day window is first
turned into business time with `add_days` + `elapsed`. Windows come from a realistic mix, starts
are random instants over a year, calendars are a few realistic markets.

    .venv/bin/python -m bench.calendar_bench [--plans 200000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

from teams.calendar import ALWAYS_OPEN, UTC
from teams.calendar_builders import calendar_for_market

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")

# (label, hours or None, business days or None, weight in the mix)
WINDOWS = (
    ("1h", timedelta(hours=1), None, 25),
    ("2h", timedelta(hours=2), None, 20),
    ("4h", timedelta(hours=4), None, 20),
    ("24h", timedelta(hours=24), None, 10),
    ("5bd", None, 5, 12),
    ("10bd", None, 10, 8),
    ("20bd", None, 20, 5),
)


def _markets():
    def market(pk, tz, hours, country="", subdivision=""):
        return SimpleNamespace(
            pk=pk,
            timezone=tz,
            hours=hours,
            holiday_country=country,
            holiday_subdivision=subdivision,
            extra_closed_dates=[],
            extra_open_dates=[],
        )

    india = {day: ["09:30-13:30", "14:30-18:30"] for day in (*WEEKDAYS, "sat")}
    new_york = {day: ["09:00-17:00"] for day in WEEKDAYS}
    germany = {day: ["08:00-12:00", "13:00-17:00"] for day in WEEKDAYS}
    return [
        ("India", calendar_for_market(market(9001, "Asia/Kolkata", india, "IN"))),
        (
            "US/New_York",
            calendar_for_market(market(9002, "America/New_York", new_york, "US", "NY")),
        ),
        ("Germany", calendar_for_market(market(9003, "Europe/Berlin", germany, "DE", "BE"))),
        (
            "24/7",
            calendar_for_market(
                market(9004, "UTC", {day: ["00:00-24:00"] for day in (*WEEKDAYS, "sat", "sun")})
            ),
        ),
    ]


def _plan_hours(calendar, start, window):
    add = calendar.add
    add(start, window * 0.8)
    add(start, window)
    add(start, window * 1.5)


def _plan_days(calendar, start, days):
    window = calendar.elapsed(start, calendar.add_days(start, days))
    add = calendar.add
    add(start, window * 0.8)
    add(start, window)
    add(start, window * 1.5)


def _jobs(rng, calendars, count, windows, year):
    first = datetime(year, 1, 1, tzinfo=UTC)
    seconds = 365 * 86_400
    weights = [w[3] for w in windows]
    jobs = []
    for _ in range(count):
        _label, hours, days, _weight = rng.choices(windows, weights)[0]
        calendar = rng.choice(calendars)
        start = first + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(10**6))
        if days is None:
            jobs.append((_plan_hours, calendar, start, hours))
        else:
            jobs.append((_plan_days, calendar, start, days))
    return jobs


def _run(jobs) -> float:
    started = time.perf_counter()
    for plan, calendar, start, arg in jobs:
        plan(calendar, start, arg)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="calendar_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=200_000, help="plans in the mixed run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--year", type=int, default=datetime.now(UTC).year)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    calendars = [cal for _name, cal in _markets()]

    # Warm the lazily built indexes over the year (a long-running worker has them warm).
    started = time.perf_counter()
    _run(_jobs(rng, calendars, 2_000, WINDOWS, args.year))
    print(f"calendar warm-up: {time.perf_counter() - started:.3f}s (4 market calendars, 1 year)")

    per_kind = max(args.plans // 10, 1_000)
    for window in WINDOWS:
        jobs = _jobs(rng, calendars, per_kind, (window,), args.year)
        elapsed = _run(jobs)
        rate = len(jobs) / elapsed
        print(f"calendar plans/s: {rate:>10,.0f} ({window[0]} windows, {len(jobs):,} plans)")

    jobs = _jobs(rng, calendars, args.plans, WINDOWS, args.year)
    elapsed = _run(jobs)
    print(
        f"calendar plans/s: {len(jobs) / elapsed:>10,.0f} (window mix, {len(jobs):,} plans, 1 core)"
    )

    always = [(plan, ALWAYS_OPEN, start, arg) for plan, _cal, start, arg in jobs[:per_kind]]
    elapsed = _run(always)
    print(f"calendar plans/s: {len(always) / elapsed:>10,.0f} (wall clock, {len(always):,} plans)")


if __name__ == "__main__":
    main()
