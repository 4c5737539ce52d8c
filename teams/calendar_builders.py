"""Build business calendars from markets and reps (duck-typed: anything with the model's fields).

Built calendars are cached by primary key plus a fingerprint of the fields they depend on, so an
edited market gets a fresh calendar on the next call and a warm calendar keeps its lazily built
index across calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

import holidays

from teams.calendar import UTC, BusinessCalendar
from teams.hours import HoursError, parse_closed_dates, parse_open_dates

_CACHE_SIZE = 512
_cache: OrderedDict[tuple, BusinessCalendar] = OrderedDict()
_cache_lock = threading.Lock()


def clear_calendar_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _cached(key: tuple, build) -> BusinessCalendar:
    with _cache_lock:
        calendar = _cache.get(key)
        if calendar is not None:
            _cache.move_to_end(key)
            return calendar
    calendar = build()
    with _cache_lock:
        _cache[key] = calendar
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return calendar


def _fingerprint_of(value) -> str:
    # repr, not sorted JSON: this runs on every plan. A reordered but equal value only costs a
    # cache miss.
    return repr(value)


def default_years(now: datetime | None = None) -> range:
    """Holiday years loaded by default: last year to two years ahead."""
    year = (now or datetime.now(UTC)).year
    return range(year - 1, year + 3)


def public_holidays(country: str, subdivision: str, years: range) -> set:
    """Public holiday dates (including observed days) of a country, from `holidays`."""
    if not country:
        return set()
    try:
        found = holidays.country_holidays(country, subdiv=subdivision or None, years=list(years))
    except NotImplementedError:
        raise HoursError(f"{country!r} is not a country the holidays package knows") from None
    except ValueError as exc:  # an unknown subdivision, or similar
        raise HoursError(f"{country}/{subdivision}: {exc}") from None
    return set(found.keys())


def calendar_for_market(market, year_range: range | None = None) -> BusinessCalendar:
    """The market's calendar: its hours in its zone, public holidays of its country (and
    subdivision) for `year_range` (default `default_years()`), extra closed dates, and extra open
    dates, which override holidays. Dates outside `year_range` get no public holidays.
    """
    years = year_range if year_range is not None else default_years()
    fingerprint = (
        market.timezone,
        _fingerprint_of(market.hours),
        market.holiday_country or "",
        market.holiday_subdivision or "",
        _fingerprint_of(market.extra_closed_dates),
        _fingerprint_of(market.extra_open_dates),
        years.start,
        years.stop,
    )

    def build() -> BusinessCalendar:
        open_dates = parse_open_dates(market.extra_open_dates)
        closed = public_holidays(market.holiday_country, market.holiday_subdivision, years)
        closed |= parse_closed_dates(market.extra_closed_dates)
        closed -= set(open_dates)
        return BusinessCalendar(market.timezone, market.hours or {}, closed, open_dates)

    return _cached(("market", getattr(market, "pk", None), fingerprint), build)


def calendar_for_rep(rep, year_range: range | None = None) -> BusinessCalendar:
    """A rep's working calendar.

    Without own hours the rep works the market's calendar: the market's hours in the market's
    zone, with its holidays and extra dates (the rep's zone then only matters for display).
    With own hours they are read in the rep's zone (default the market's) and get no public
    holidays or extra dates: personal absences are time off, not calendar entries.
    """
    market = rep.team.market
    if rep.hours is None:
        return calendar_for_market(market, year_range)
    timezone = rep.timezone or market.timezone
    fingerprint = (timezone, _fingerprint_of(rep.hours))
    return _cached(
        ("rep", getattr(rep, "pk", None), fingerprint),
        lambda: BusinessCalendar(timezone, rep.hours),
    )
