"""Planning stage instants from a window, the thresholds and a business calendar.

All durations are business time; arithmetic in integer microseconds so that re-planning is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from escalations.models import Clock, Stage
from escalations.windows import Window
from teams.calendar import ALWAYS_OPEN
from teams.calendar_builders import calendar_for_market

STAGE_ORDER = (Stage.PENDING, Stage.WARNED, Stage.BREACHED, Stage.REASSIGNED)
# stage reached -> the field holding its instant
STAGE_INSTANT = {Stage.WARNED: "warn_at", Stage.BREACHED: "due_at", Stage.REASSIGNED: "reassign_at"}
US = timedelta(microseconds=1)


def calendar_for(lead, clock: str):
    """The calendar a timer counts on: the market's business hours, or the wall clock."""
    if clock == Clock.CALENDAR:
        return ALWAYS_OPEN
    return calendar_for_market(lead.market)


def window_business_time(start: datetime, window: Window, calendar) -> timedelta:
    """The window as business time from `start` (for `Nbd`: up to the same local time on the
    N-th business day, SPEC §4)."""
    if window.business_days is None:
        return window.duration
    deadline = calendar.add_days(start, window.business_days)
    return calendar.elapsed(start, deadline)


def percent_of(duration: timedelta, percent: int) -> timedelta:
    return timedelta(microseconds=(duration // US) * percent // 100)


def stage_offsets(window_business: timedelta, thresholds: dict) -> dict[str, timedelta]:
    return {
        "warn_at": percent_of(window_business, thresholds["warn"]),
        "due_at": percent_of(window_business, thresholds["breach"]),
        "reassign_at": percent_of(window_business, thresholds["reassign"]),
    }


@dataclass(frozen=True)
class Plan:
    warn_at: datetime
    due_at: datetime
    reassign_at: datetime


def plan_instants(
    calendar,
    *,
    running_since: datetime,
    consumed: timedelta,
    window_business: timedelta,
    thresholds: dict,
) -> Plan:
    """Stage instants for a clock that has used `consumed` business time before `running_since`
    and runs from there on. Offsets already used up before a pause map to `running_since`."""
    out = {}
    for name, offset in stage_offsets(window_business, thresholds).items():
        remaining = offset - consumed
        out[name] = (
            calendar.add(running_since, remaining) if remaining > timedelta(0) else running_since
        )
    return Plan(**out)


def next_stage(stage: str) -> str | None:
    index = STAGE_ORDER.index(stage)
    return STAGE_ORDER[index + 1] if index + 1 < len(STAGE_ORDER) else None


def next_fire_at(timer) -> datetime | None:
    """When the sweep must look at this timer next (None: nothing will ever be due)."""
    if timer.completed_at is not None:
        return None
    if timer.paused_at is not None:
        return timer.resume_at
    stage = next_stage(timer.stage)
    if stage is None:
        return None
    return getattr(timer, STAGE_INSTANT[stage])


def next_stage_at(timer) -> datetime | None:
    """What `Lead.next_stage_at` holds for a lead whose open timer is `timer` (the database
    trigger of migration `lead_next_stage_at_trigger` computes the same): the instant of the
    next stage; past the last stage, the breach instant; None when paused, finished or absent.
    Unlike `next_fire_at` it ignores the sweep's retries and resume times."""
    if timer is None or timer.completed_at is not None or timer.paused_at is not None:
        return None
    stage = next_stage(timer.stage)
    return getattr(timer, STAGE_INSTANT[stage]) if stage else timer.due_at


def business_elapsed(timer, at: datetime, calendar) -> timedelta:
    """Business time the timer had used by `at` (pauses excluded)."""
    if timer.paused_at is not None or at <= timer.running_since:
        return timer.consumed
    return timer.consumed + calendar.elapsed(timer.running_since, at)
