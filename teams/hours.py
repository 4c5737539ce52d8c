"""The weekly-hours format shared by markets, reps, the org file and the calendar engine.

`{"mon": ["09:00-13:00", "14:00-18:00"], ..., "sun": []}`: each interval is `HH:MM-HH:MM`
with start before end, `24:00` allowed as an end; intervals of one day must not overlap. A day
missing from the mapping is closed. Times are minutes after local midnight.
"""

from __future__ import annotations

import re
import reprlib
import zoneinfo
from datetime import date, datetime

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# ASCII digits only (`\d` would also take `０９:００`); `\Z` so a trailing newline is not accepted.
_INTERVAL = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})\Z", re.ASCII)

Interval = tuple[int, int]  # minutes after local midnight, [start, end)


class HoursError(ValueError):
    """A malformed hours value; the message names the day and the interval."""


def parse_interval(text: str) -> Interval:
    match = _INTERVAL.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise HoursError(f"{reprlib.repr(text)} is not an interval like '09:00-18:00'")
    sh, sm, eh, em = (int(g) for g in match.groups())
    if sh > 23 or sm > 59 or em > 59 or eh > 24 or (eh == 24 and em != 0):
        raise HoursError(f"{text!r} has a time that does not exist (use 00:00 to 24:00)")
    start, end = sh * 60 + sm, eh * 60 + em
    if start >= end:
        raise HoursError(
            f"{text!r} must start before it ends (write a night shift as two intervals)"
        )
    return start, end


def parse_day(intervals: list[str] | None) -> list[Interval]:
    """Parse one day's intervals, sorted; overlapping intervals are refused."""
    if intervals is None:
        return []
    if isinstance(intervals, str) or not isinstance(intervals, (list, tuple)):
        raise HoursError(
            f"{reprlib.repr(intervals)} must be a list of intervals like ['09:00-18:00']"
        )
    parsed = sorted(parse_interval(item) for item in intervals)
    for (s1, e1), (s2, e2) in zip(parsed, parsed[1:], strict=False):
        if s2 < e1:
            raise HoursError(
                f"intervals {format_interval((s1, e1))} and {format_interval((s2, e2))} overlap"
            )
    return parsed


def parse_week(hours: dict | None) -> dict[str, list[Interval]]:
    """Parse a weekly-hours mapping; raises HoursError naming the day at fault."""
    if hours is None:
        hours = {}
    if not isinstance(hours, dict):
        raise HoursError("hours must be a mapping of mon..sun to lists of intervals")
    unknown = [day for day in hours if day not in WEEKDAYS]  # a key may be any type (YAML `1:`)
    if unknown:
        shown = ", ".join(sorted(reprlib.repr(day) for day in unknown))
        raise HoursError(f"unknown day(s) {shown}; use {', '.join(WEEKDAYS)}")
    week = {}
    for day in WEEKDAYS:
        try:
            week[day] = parse_day(hours.get(day))
        except HoursError as exc:
            raise HoursError(f"{day}: {exc}") from None
    return week


def require_some_hours(hours: dict | None) -> None:
    """Weekly hours that never open would make every SLA deadline unreachable."""
    if not any(parse_week(hours).values()):
        raise HoursError("at least one day needs opening hours")


def format_interval(interval: Interval) -> str:
    start, end = interval
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


def normalize_week(hours: dict | None) -> dict[str, list[str]]:
    """The canonical stored form: every day present, intervals sorted and zero-padded."""
    return {day: [format_interval(i) for i in ivs] for day, ivs in parse_week(hours).items()}


def validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise HoursError(f"{name!r} is not an IANA time zone (like 'Europe/Berlin')") from None
    if name not in zoneinfo.available_timezones():
        raise HoursError(f"{name!r} is not an IANA time zone (like 'Europe/Berlin')")
    return name


def parse_date(value) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):  # a datetime is not a date
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)  # ASCII digits only
        except ValueError:
            pass
    raise HoursError(f"{reprlib.repr(value)} is not a date like '2026-12-31'")


def parse_closed_dates(values) -> set[date]:
    if values is None:
        return set()
    if not isinstance(values, (list, tuple, set)):
        raise HoursError("closed dates must be a list of dates like ['2026-12-31']")
    return {parse_date(v) for v in values}


def parse_open_dates(values) -> dict[date, list[Interval] | None]:
    """Extra open dates: `"2026-12-27"` (the weekday's usual hours) or
    `{"date": "2026-12-27", "hours": ["10:00-14:00"]}` (hours of its own)."""
    if values is None:
        return {}
    if not isinstance(values, (list, tuple, set)):
        raise HoursError("open dates must be a list of dates or {date, hours} entries")
    result: dict[date, list[Interval] | None] = {}
    for value in values:
        if isinstance(value, dict):
            unknown = set(value) - {"date", "hours"}
            if unknown or "date" not in value:
                raise HoursError(f"{value!r} must have 'date' and optional 'hours'")
            day = parse_date(value["date"])
            hours = value.get("hours")
            result[day] = None if hours is None else parse_day(hours)
        else:
            result[parse_date(value)] = None
    return result


def serialize_open_dates(values: dict[date, list[Interval] | None]) -> list:
    out = []
    for day in sorted(values):
        ivs = values[day]
        if ivs is None:
            out.append(day.isoformat())
        else:
            out.append({"date": day.isoformat(), "hours": [format_interval(i) for i in ivs]})
    return out
