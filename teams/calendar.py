"""The business calendar engine: which instants are open, and business-time arithmetic.

Pure Python, no Django. A `BusinessCalendar` has an IANA zone, weekly hours (teams.hours format),
closed dates (holidays) and extra open dates. Semantics (SPEC §5):

- An instant is open when its local wall-clock time falls inside an interval of its local date.
  Intervals are read on each date in the calendar's zone, so a DST day is 23 or 25 hours long: an
  interval over the skipped spring hour is shortened (never shifted), the repeated autumn hour
  counts twice. An interval inside the repeated hour is two disjoint UTC ranges.
- Intervals are half-open: 18:00 is closed on a 09:00-18:00 day, 17:59:59.999999 is open.
- A deadline is the earliest instant at which the business time is used up, so a window used up
  exactly at closing time ends at closing time, not at the next opening.

All inputs must be timezone-aware datetimes (`NaiveDatetimeError` otherwise); all outputs are UTC.

How it is fast: per local date the exact UTC open ranges are computed once (walking the zone's
offset transitions), and merged into one sorted array of ranges with a prefix sum of business
time, built lazily in chunks of dates. Business time before an instant, B(t), is then one bisect,
`add` is B(start) + d and a bisect on the prefix sums, `elapsed` is B(end) - B(start). All
arithmetic is in integer microseconds since the epoch, so `elapsed(s, add(s, d)) == d` exactly.
"""

from __future__ import annotations

import threading
import zoneinfo
from bisect import bisect_left, bisect_right
from datetime import UTC, date, datetime, timedelta

from teams.hours import (
    WEEKDAYS,
    HoursError,
    Interval,
    format_interval,
    parse_date,
    parse_interval,
    parse_open_dates,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = 1_000_000  # microseconds per second
MINUTE = 60 * US
DAY = 86_400 * US

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_CHUNK_DAYS = 128  # dates computed per extension of the index
_SAMPLE_SECONDS = 6 * 3600  # offset sampling step when looking for DST transitions
# Dates (as days since the epoch) the engine works in; beyond, it refuses rather than loop.
_FIRST_DAY = date(1901, 1, 1).toordinal() - _EPOCH_ORDINAL
_LAST_DAY = date(9000, 1, 1).toordinal() - _EPOCH_ORDINAL


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone was given; the engine only takes aware datetimes."""


class NoBusinessTimeError(ValueError):
    """The calendar has no (more) business time where some was needed."""


def _us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    try:
        td = value - EPOCH
    except TypeError:
        if isinstance(value, datetime):
            raise NaiveDatetimeError(
                f"{value!r} is naive: give a timezone-aware datetime (e.g. tzinfo=UTC)"
            ) from None
        raise TypeError(f"expected a timezone-aware datetime, got {value!r}") from None
    return (td.days * 86_400 + td.seconds) * US + td.microseconds


def _dt(us: int) -> datetime:
    return EPOCH + timedelta(0, 0, us)


def _duration_us(duration: timedelta) -> int:
    try:
        return (duration.days * 86_400 + duration.seconds) * US + duration.microseconds
    except AttributeError:
        raise TypeError(f"expected a timedelta, got {duration!r}") from None


def _as_date(value) -> date:
    if isinstance(value, datetime):
        return value.date()
    return parse_date(value)


def _coerce_day(value) -> tuple[Interval, ...]:
    """One day's intervals as strings ("09:00-18:00") or parsed (540, 1080) pairs."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise HoursError(f"{value!r} must be a list of intervals like ['09:00-18:00']")
    parsed = []
    for item in value:
        if isinstance(item, str):
            parsed.append(parse_interval(item))
        elif (
            isinstance(item, (list, tuple))
            and len(item) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
        ):
            start, end = item
            if not 0 <= start < end <= 24 * 60:
                raise HoursError(f"{item!r} is not an interval of minutes within 0..1440")
            parsed.append((start, end))
        else:
            raise HoursError(f"{item!r} is not an interval like '09:00-18:00'")
    parsed.sort()
    for (s1, e1), (s2, e2) in zip(parsed, parsed[1:], strict=False):
        if s2 < e1:
            raise HoursError(
                f"intervals {format_interval((s1, e1))} and {format_interval((s2, e2))} overlap"
            )
    return tuple(parsed)


def _coerce_week(hours) -> tuple[tuple[Interval, ...], ...]:
    if hours is None:
        hours = {}
    if not isinstance(hours, dict):
        raise HoursError("hours must be a mapping of mon..sun to lists of intervals")
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise HoursError(f"unknown day(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
    week = []
    for day in WEEKDAYS:
        try:
            week.append(_coerce_day(hours.get(day)))
        except HoursError as exc:
            raise HoursError(f"{day}: {exc}") from None
    return tuple(week)


def _coerce_open_dates(values) -> dict[date, tuple[Interval, ...] | None]:
    if values is None:
        return {}
    if isinstance(values, dict):
        return {
            _as_date(day): None if ivs is None else _coerce_day(ivs) for day, ivs in values.items()
        }
    if isinstance(values, (list, tuple, set, frozenset)):
        values = [v.date() if isinstance(v, datetime) else v for v in values]
        return {
            day: None if ivs is None else tuple(ivs)
            for day, ivs in parse_open_dates(list(values)).items()
        }
    raise HoursError("open dates must be a set of dates or a mapping of date to hours")


class _Index:
    """An immutable snapshot of the lazily built range index (swapped whole, so readers in other
    threads never see half an extension).

    starts/ends/offs: merged open UTC ranges, sorted, with their UTC offset (ranges are merged only
    when they touch and share an offset, so local wall time = t + offs[i] inside range i).
    cum[i]: business time before range i; cum[-1]: total. Values may be shifted by a constant
    after a backward rebuild; only differences matter, and they stay consistent across snapshots.
    The index is exact for instants in [low, high): it holds every range of the local dates
    [first, stop) that starts before `high`; the rest wait in `pending`.
    """

    __slots__ = (
        "starts",
        "ends",
        "offs",
        "cum",
        "first",
        "stop",
        "low",
        "high",
        "pending",
        "bdays",
    )

    def __init__(self, starts, ends, offs, cum, first, stop, pending, bdays):
        self.starts = starts
        self.ends = ends
        self.offs = offs
        self.cum = cum
        self.first = first
        self.stop = stop
        # UTC offsets are strictly within ±24 h: instants of dates before `first` end before
        # `low`, instants of dates from `stop` on start after `high`.
        self.low = first * DAY + DAY
        self.high = stop * DAY - DAY
        self.pending = pending
        self.bdays = bdays  # business dates (days since the epoch) in [first, stop), sorted


def _append_ranges(starts, ends, offs, cum, ranges) -> None:
    for start, end, off in ranges:
        if starts and ends[-1] == start and offs[-1] == off:
            ends[-1] = end
            cum[-1] += end - start
        else:
            starts.append(start)
            ends.append(end)
            offs.append(off)
            cum.append(cum[-1] + end - start)


def _business_before(idx: _Index, t: int) -> int:
    i = bisect_right(idx.starts, t) - 1
    if i < 0:
        return idx.cum[0]
    end = idx.ends[i]
    return idx.cum[i] + (t if t < end else end) - idx.starts[i]


class BusinessCalendar:
    """Business hours of one zone with holidays and extra open dates; see the module docstring.

    `hours` maps mon..sun to intervals ("09:00-13:00") or parsed (minutes, minutes) pairs; a
    missing day is closed. `closed_dates` close whole local dates. `open_dates` (a set, a mapping
    of date to own hours or None, or the stored JSON list) open dates even if closed: with None,
    the weekday's usual hours; if that weekday has none (an extra open Sunday), the hours of the
    first weekday, Monday first, that has any. An open date overrides a closed date.
    """

    def __init__(
        self,
        timezone: str,
        hours: dict,
        closed_dates=frozenset(),
        open_dates=frozenset(),
    ):
        try:
            self.tz = zoneinfo.ZoneInfo(str(timezone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
            raise HoursError(
                f"{timezone!r} is not an IANA time zone (like 'Europe/Berlin')"
            ) from None
        self.timezone = str(timezone)
        self.week = _coerce_week(hours)
        self.closed_dates = frozenset(_as_date(d) for d in closed_dates or ())
        self.open_dates = _coerce_open_dates(open_dates)
        fallback = next((ivs for ivs in self.week if ivs), ())
        self._closed = {d.toordinal() - _EPOCH_ORDINAL for d in self.closed_dates}
        self._open = {}
        for day, own in self.open_dates.items():
            if own is None:
                own = self.week[day.weekday()] or fallback
            self._open[day.toordinal() - _EPOCH_ORDINAL] = own
        # Without weekly hours there is no business after the last extra open date.
        self._last_business_day = None
        if not any(self.week):
            open_days = [x for x, ivs in self._open.items() if ivs]
            self._last_business_day = max(open_days) if open_days else _FIRST_DAY - 10
        self._lock = threading.Lock()
        self._day_ranges: dict[int, tuple[tuple[int, int, int], ...]] = {}
        self._idx: _Index | None = None

    def __repr__(self) -> str:
        return f"<BusinessCalendar {self.timezone}>"

    # --- public API -------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        t = _us(at)
        idx = self._idx
        if idx is None or not idx.low <= t < idx.high:
            idx = self._cover(t)
        i = bisect_right(idx.starts, t) - 1
        return i >= 0 and t < idx.ends[i]

    def next_open(self, at: datetime) -> datetime:
        """`at` itself (in UTC) if open, else the next opening."""
        return _dt(self._next_open_us(_us(at)))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant at which `duration` of business time has passed since `start`.

        add(start, 0) is start itself even when closed; with a positive duration the result is
        open or exactly a closing instant (the end of an open range), never inside a closed one.
        """
        s = _us(start)
        d = _duration_us(duration)
        if d <= 0:
            if d == 0:
                return _dt(s)
            raise ValueError(f"duration must not be negative, got {duration!r}")
        idx = self._idx
        if idx is None or not idx.low <= s < idx.high:
            idx = self._cover(s)
        starts = idx.starts
        cum = idx.cum
        i = bisect_right(starts, s) - 1
        if i < 0:
            target = cum[0] + d
        else:
            end = idx.ends[i]
            target = cum[i] + (s if s < end else end) - starts[i] + d
        k = bisect_left(cum, target)
        while k >= len(cum):
            idx = self._more(idx)
            starts = idx.starts
            cum = idx.cum
            k = bisect_left(cum, target)
        return _dt(starts[k - 1] + target - cum[k - 1])

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between two instants; zero if end <= start."""
        s = _us(start)
        e = _us(end)
        if e <= s:
            return timedelta(0)
        idx = self._idx
        if idx is None or not (idx.low <= s and e < idx.high):
            self._cover(s)
            idx = self._cover(e)
        return timedelta(0, 0, _business_before(idx, e) - _business_before(idx, s))

    def add_days(self, start: datetime, n: int) -> datetime:
        """SPEC §4 `Nbd`: the same local time on the n-th business day after the start.

        A start outside business hours counts from the next opening (its local date and time).
        Business days are local dates with some business time. The target is the first instant
        of the n-th business day whose wall time is at or after that time (inside a DST gap:
        the end of the gap; a repeated time: its first occurrence). The deadline is the earliest
        instant with the same business time as the target (SPEC §5), so when the target is not
        open it moves back to the last closing before it: after the day's last interval (a
        shorter day) or in a break it is that day's closing time; at or before the day's first
        opening - e.g. a start outside hours, which counts from an opening - it is the closing
        time of the business day before (a night lead with `1bd` is due at the end of the next
        business day). The business time of the window is the same either way. n = 0 returns
        the start itself.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a whole number of business days >= 0, got {n!r}")
        s = _us(start)
        if n == 0:
            return _dt(s)
        s = self._next_open_us(s)
        idx = self._idx
        if not idx.low <= s < idx.high:
            idx = self._cover(s)
        i = bisect_right(idx.starts, s) - 1  # s is open, so inside range i
        wall = s + idx.offs[i]
        day0 = wall // DAY
        time_of_day = wall - day0 * DAY
        k = bisect_right(idx.bdays, day0) + n - 1
        while k >= len(idx.bdays):
            idx = self._more(idx)
            k = bisect_right(idx.bdays, day0) + n - 1
        day = idx.bdays[k]
        ranges = self._day_ranges[day]
        wall_target = day * DAY + time_of_day
        for r_start, r_end, off in ranges:
            if r_end + off > wall_target:
                target = r_start if r_start + off >= wall_target else wall_target - off
                break
        else:
            target = ranges[-1][1]
        if not target < idx.high:
            idx = self._cover(target)
        return _dt(self._earliest_with(idx, _business_before(idx, target)))

    # --- the index --------------------------------------------------------------------------

    def _next_open_us(self, t: int) -> int:
        idx = self._idx
        if idx is None or not idx.low <= t < idx.high:
            idx = self._cover(t)
        i = bisect_right(idx.starts, t) - 1
        if i >= 0 and t < idx.ends[i]:
            return t
        while True:
            i = bisect_right(idx.starts, t)
            if i < len(idx.starts):
                return idx.starts[i]
            idx = self._more(idx)

    def _earliest_with(self, idx: _Index, business: int) -> int:
        """The earliest instant before which `business` (an index value) has passed."""
        k = bisect_left(idx.cum, business)
        while k >= len(idx.cum):
            idx = self._more(idx)
            k = bisect_left(idx.cum, business)
        if k == 0:
            return idx.starts[0] if idx.starts else idx.low
        return idx.starts[k - 1] + business - idx.cum[k - 1]

    def _cover(self, t: int) -> _Index:
        """A snapshot exact at instant t, extending the index as needed."""
        day = t // DAY
        if not _FIRST_DAY + 2 <= day < _LAST_DAY:
            raise ValueError(f"{_dt(t).isoformat()} is outside the years the calendar supports")
        with self._lock:
            idx = self._idx
            if idx is None:
                idx = _Index([], [], [], [0], day - 2, day - 2, [], [])
            while t >= idx.high:
                idx = self._grow_forward(idx)
                self._idx = idx
            if t < idx.low:
                idx = self._rebuild(min(day - 2, idx.first - (idx.stop - idx.first)), idx)
                self._idx = idx
            return idx

    def _more(self, idx: _Index) -> _Index:
        """A snapshot with more dates ahead than `idx`, or NoBusinessTimeError."""
        with self._lock:
            current = self._idx
            if current.stop > idx.stop:
                return current
            last = self._last_business_day
            if (last is not None and current.stop > last + 2) or current.stop >= _LAST_DAY:
                raise NoBusinessTimeError(
                    f"{self!r} has no business time after {_dt(current.high).date().isoformat()}"
                )
            self._idx = self._grow_forward(current)
            return self._idx

    def _grow_forward(self, idx: _Index) -> _Index:
        first, stop = idx.first, idx.stop
        new_stop = min(stop + max(_CHUNK_DAYS, (stop - first) // 2), _LAST_DAY)
        self._compute_days(stop, new_stop)
        new = list(idx.pending)
        bdays = list(idx.bdays)
        for day in range(stop, new_stop):
            ranges = self._day_ranges[day]
            if ranges:
                new.extend(ranges)
                bdays.append(day)
        new.sort()
        high = new_stop * DAY - DAY
        split = bisect_left(new, (high,))
        starts, ends, offs, cum = idx.starts[:], idx.ends[:], idx.offs[:], idx.cum[:]
        _append_ranges(starts, ends, offs, cum, new[:split])
        return _Index(starts, ends, offs, cum, first, new_stop, new[split:], bdays)

    def _rebuild(self, new_first: int, idx: _Index) -> _Index:
        """Rebuild from an earlier first date, keeping business values consistent with idx."""
        new_first = max(new_first, _FIRST_DAY)
        stop = idx.stop
        self._compute_days(new_first, idx.first)
        ranges = []
        bdays = []
        for day in range(new_first, stop):
            day_ranges = self._day_ranges[day]
            if day_ranges:
                ranges.extend(day_ranges)
                bdays.append(day)
        ranges.sort()
        split = bisect_left(ranges, (idx.high,))
        starts, ends, offs, cum = [], [], [], [0]
        _append_ranges(starts, ends, offs, cum, ranges[:split])
        new = _Index(starts, ends, offs, cum, new_first, stop, ranges[split:], bdays)
        if idx.low < idx.high:
            shift = _business_before(idx, idx.low) - _business_before(new, idx.low)
            new.cum = [c + shift for c in cum]
        return new

    def _compute_days(self, first: int, stop: int) -> None:
        """The UTC open ranges of each local date in [first, stop), cached by date."""
        days = [day for day in range(first, stop) if day not in self._day_ranges]
        if not days:
            return
        pieces = self._offset_pieces(days[0] * DAY - DAY, (days[-1] + 1) * DAY + DAY)
        for day in days:
            self._day_ranges[day] = self._ranges_of_day(day, pieces)

    def _hours_of_day(self, day: int) -> tuple[Interval, ...]:
        own = self._open.get(day)
        if own is not None:
            return own
        if day in self._closed:
            return ()
        return self.week[(day + 3) % 7]  # 1970-01-01 was a Thursday

    def _ranges_of_day(self, day: int, pieces) -> tuple[tuple[int, int, int], ...]:
        """Exact UTC ranges whose local wall time lies in an interval of this local date.

        For each stretch of constant UTC offset, the instants with wall time in [s, e) on this
        date are [midnight + s - offset, midnight + e - offset) clipped to the stretch; with a
        repeated hour two stretches can both contribute, with a skipped hour neither does.
        """
        intervals = self._hours_of_day(day)
        if not intervals:
            return ()
        midnight = day * DAY
        lo, hi = midnight - DAY, midnight + 2 * DAY
        ranges = []
        for p_start, p_end, off in pieces:
            if p_end <= lo or p_start >= hi:
                continue
            for i_start, i_end in intervals:
                start = max(p_start, midnight + i_start * MINUTE - off)
                end = min(p_end, midnight + i_end * MINUTE - off)
                if start < end:
                    ranges.append((start, end, off))
        ranges.sort()
        return tuple(ranges)

    def _offset_at(self, second: int) -> int:
        offset = (EPOCH + timedelta(seconds=second)).astimezone(self.tz).utcoffset()
        return (offset.days * 86_400 + offset.seconds) * US + offset.microseconds

    def _offset_pieces(self, lo_us: int, hi_us: int) -> list[tuple[int, int, int]]:
        """Stretches [start, end) of constant UTC offset covering [lo, hi), in microseconds.

        zoneinfo has no public list of transitions: sample every few hours and bisect to the
        second where the offset changes (tz transitions fall on whole seconds).
        """
        lo = lo_us // US
        hi = -(-hi_us // US)
        pieces = []
        piece_start, piece_off = lo, self._offset_at(lo)
        x = lo
        while x < hi:
            nx = min(x + _SAMPLE_SECONDS, hi)
            if self._offset_at(nx) == piece_off:
                x = nx
                continue
            a, b = x, nx
            while b - a > 1:
                mid = (a + b) // 2
                if self._offset_at(mid) == piece_off:
                    a = mid
                else:
                    b = mid
            pieces.append((piece_start * US, b * US, piece_off))
            piece_start, piece_off = b, self._offset_at(b)
            x = b
        pieces.append((piece_start * US, hi * US, piece_off))
        return pieces


class AlwaysOpenCalendar:
    """The wall clock, for `calendar` SLA clocks: same interface as BusinessCalendar."""

    timezone = "UTC"

    def __repr__(self) -> str:
        return "<AlwaysOpenCalendar>"

    def is_open(self, at: datetime) -> bool:
        _us(at)
        return True

    def next_open(self, at: datetime) -> datetime:
        return _dt(_us(at))

    def add(self, start: datetime, duration: timedelta) -> datetime:
        d = _duration_us(duration)
        if d < 0:
            raise ValueError(f"duration must not be negative, got {duration!r}")
        return _dt(_us(start) + d)

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        s, e = _us(start), _us(end)
        return timedelta(0, 0, e - s) if e > s else timedelta(0)

    def add_days(self, start: datetime, n: int) -> datetime:
        """n days of 24 hours after start."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a whole number of days >= 0, got {n!r}")
        return _dt(_us(start) + n * DAY)


ALWAYS_OPEN = AlwaysOpenCalendar()
