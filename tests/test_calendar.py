"""The business calendar engine (teams.calendar) and its builders: no database needed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from teams.calendar import (
    ALWAYS_OPEN,
    UTC,
    BusinessCalendar,
    NaiveDatetimeError,
    NoBusinessTimeError,
)
from teams.calendar_builders import calendar_for_market, calendar_for_rep, clear_calendar_cache
from teams.hours import HoursError, parse_open_dates, parse_week

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
WORKWEEK = ("mon", "tue", "wed", "thu", "fri")
ALL_WEEK = (*WORKWEEK, "sat", "sun")
US = timedelta(microseconds=1)


def week(days, *intervals):
    return {day: list(intervals) for day in days}


def local(tz, *args, fold=0):
    return datetime(*args, tzinfo=ZoneInfo(tz) if isinstance(tz, str) else tz, fold=fold)


def utc(tz, *args, fold=0):
    """A local time as UTC: aware datetimes with fold=1 never compare equal across zones."""
    return local(tz, *args, fold=fold).astimezone(UTC)


# --- calendars for the property tests --------------------------------------------------------

CALENDAR_ARGS = {
    "weekday_9_18": ("UTC", week(WORKWEEK, "09:00-18:00"), (), ()),
    "lunch_break": ("Asia/Kolkata", week(WORKWEEK, "09:00-13:00", "14:00-18:00"), (), ()),
    "always_open_berlin": ("Europe/Berlin", week(ALL_WEEK, "00:00-24:00"), (), ()),
    # Intervals over the hours that DST skips or repeats.
    "berlin_dst": ("Europe/Berlin", week(ALL_WEEK, "01:30-03:30", "08:00-20:00"), (), ()),
    "new_york_dst": ("America/New_York", week(ALL_WEEK, "01:15-02:45", "09:00-17:00"), (), ()),
    "kathmandu": ("Asia/Kathmandu", week(("sun", *WORKWEEK[:-1]), "10:00-17:00"), (), ()),
    "holidays_and_open_dates": (
        "Europe/London",
        week(WORKWEEK, "09:00-17:30"),
        {date(2026, 3, 9), date(2026, 3, 10), date(2026, 12, 25), date(2026, 12, 28)},
        {
            date(2026, 3, 14): ["10:00-14:00"],  # a Saturday with its own hours
            date(2026, 3, 15): None,  # a Sunday: Monday's hours
            date(2026, 3, 10): None,  # open overrides closed
        },
    ),
    "fri_sat_weekend": (
        "Asia/Dubai",
        week(("sun", "mon", "tue", "wed", "thu"), "08:00-17:00"),
        (),
        (),
    ),
    # Chile changes clocks at local midnight, right inside the night shift.
    "night_shift": ("America/Santiago", week(ALL_WEEK, "00:00-01:30", "22:00-24:00"), (), ()),
}
CALENDARS = {name: BusinessCalendar(*args) for name, args in CALENDAR_ARGS.items()}

# Noon UTC on days of DST changes (US, EU, Chile) and around the new year.
SPECIAL_DAYS = [
    datetime(2026, 3, 8, 12, tzinfo=UTC),
    datetime(2026, 3, 29, 12, tzinfo=UTC),
    datetime(2026, 4, 5, 12, tzinfo=UTC),
    datetime(2026, 9, 6, 12, tzinfo=UTC),
    datetime(2026, 10, 25, 12, tzinfo=UTC),
    datetime(2026, 11, 1, 12, tzinfo=UTC),
    datetime(2026, 12, 31, 12, tzinfo=UTC),
    datetime(2026, 3, 12, 12, tzinfo=UTC),
]
DAY_US = 86_400 * 10**6

instants = st.one_of(
    st.integers(0, 2 * 366 * DAY_US).map(
        lambda us: datetime(2025, 6, 1, tzinfo=UTC) + timedelta(microseconds=us)
    ),
    st.builds(
        lambda day, us: day + timedelta(microseconds=us),
        st.sampled_from(SPECIAL_DAYS),
        st.integers(-3 * DAY_US, 3 * DAY_US),
    ),
)
durations = st.one_of(
    st.integers(0, 6 * 3600 * 10**6),
    st.integers(0, 30 * DAY_US),
    st.sampled_from([0, 1, 60 * 10**6, 3600 * 10**6, 9 * 3600 * 10**6]),
).map(lambda us: timedelta(microseconds=us))

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
each_calendar = pytest.mark.parametrize("name", list(CALENDARS))


def reference_is_open(name, at):
    """Straight from SPEC §5: the local wall time falls inside an interval of its local date."""
    tz, hours, closed, opened = CALENDAR_ARGS[name]
    wall = at.astimezone(ZoneInfo(tz))
    day = wall.date()
    weekday = ALL_WEEK[day.weekday()]
    if day in opened:
        intervals = opened[day]
        if intervals is None:
            intervals = hours.get(weekday) or next(hours[d] for d in ALL_WEEK if hours.get(d))
    elif day in closed:
        intervals = []
    else:
        intervals = hours.get(weekday, [])
    time_of_day = timedelta(
        hours=wall.hour, minutes=wall.minute, seconds=wall.second, microseconds=wall.microsecond
    )
    for interval in intervals:
        start, end = interval.split("-")
        sh, sm = map(int, start.split(":"))
        eh, em = map(int, end.split(":"))
        if timedelta(hours=sh, minutes=sm) <= time_of_day < timedelta(hours=eh, minutes=em):
            return True
    return False


def is_closing_instant(calendar, at):
    return not calendar.is_open(at) and calendar.is_open(at - US)


# --- properties ------------------------------------------------------------------------------


@each_calendar
@PROPERTY
@given(at=instants, in_local_zone=st.booleans())
def test_is_open_matches_the_wall_clock_definition(name, at, in_local_zone):
    calendar = CALENDARS[name]
    if in_local_zone:
        at = at.astimezone(calendar.tz)
    assert calendar.is_open(at) == reference_is_open(name, at)


@each_calendar
@PROPERTY
@given(start=instants, duration=durations)
def test_elapsed_of_add_is_the_duration_exactly(name, start, duration):
    calendar = CALENDARS[name]
    assert calendar.elapsed(start, calendar.add(start, duration)) == duration


@each_calendar
@PROPERTY
@given(start=instants, a=durations, b=durations)
def test_add_is_monotonic_and_composes(name, start, a, b):
    calendar = CALENDARS[name]
    small, large = sorted((a, b))
    assert calendar.add(start, small) <= calendar.add(start, large)
    assert calendar.add(calendar.add(start, a), b) == calendar.add(start, a + b)


@each_calendar
@PROPERTY
@given(points=st.lists(instants, min_size=3, max_size=3))
def test_elapsed_is_additive_over_a_split_point(name, points):
    calendar = CALENDARS[name]
    start, middle, end = sorted(points)
    assert calendar.elapsed(start, end) == calendar.elapsed(start, middle) + calendar.elapsed(
        middle, end
    )
    assert calendar.elapsed(end, start) == timedelta(0) or start == end


@each_calendar
@PROPERTY
@given(start=instants, duration=durations.filter(bool))
def test_add_with_positive_duration_ends_open_or_exactly_at_a_closing_instant(
    name, start, duration
):
    calendar = CALENDARS[name]
    end = calendar.add(start, duration)
    assert end > start
    assert end.tzinfo is UTC
    assert calendar.is_open(end) or is_closing_instant(calendar, end)
    # Earliest: one microsecond earlier the business time is not used up yet.
    assert calendar.elapsed(start, end - US) < duration


@each_calendar
@PROPERTY
@given(at=instants)
def test_next_open_is_open_and_skips_no_business_time(name, at):
    calendar = CALENDARS[name]
    opening = calendar.next_open(at)
    assert opening >= at
    assert calendar.is_open(opening)
    assert calendar.elapsed(at, opening) == timedelta(0)
    assert (opening == at) == calendar.is_open(at)


@each_calendar
@PROPERTY
@given(start=instants, n=st.integers(1, 25))
def test_add_days_is_a_deadline_of_the_same_business_time(name, start, n):
    calendar = CALENDARS[name]
    deadline = calendar.add_days(start, n)
    assert deadline > start
    assert calendar.is_open(deadline) or is_closing_instant(calendar, deadline)
    assert calendar.add(start, calendar.elapsed(start, deadline)) == deadline
    assert calendar.add_days(start, n + 1) > deadline


def reference_add_days(calendar, start, n):
    """add_days spelled out slowly with dates and wall times (see its docstring)."""
    tz = calendar.tz
    opening = calendar.next_open(start).astimezone(tz)
    day, time_of_day = opening.date(), opening.time()

    def first_instant(d):
        return datetime.combine(d, datetime.min.time(), tzinfo=tz)  # fold=0: after a gap

    found = 0
    while found < n:
        day += timedelta(days=1)
        if calendar.elapsed(first_instant(day), first_instant(day + timedelta(days=1))):
            found += 1
    target = datetime.combine(day, time_of_day, tzinfo=tz)  # fold=0: the first occurrence
    if target.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != target.replace(tzinfo=None):
        return None  # the time falls in a DST gap: covered by an example test
    return calendar.add(opening, calendar.elapsed(opening, target))


@each_calendar
@PROPERTY
@given(start=instants, n=st.integers(1, 12))
def test_add_days_matches_the_slow_reference(name, start, n):
    calendar = CALENDARS[name]
    expected = reference_add_days(calendar, start, n)
    assume(expected is not None)
    assert calendar.add_days(start, n) == expected


# --- examples: add ---------------------------------------------------------------------------

NINE_TO_SIX = BusinessCalendar("Europe/Berlin", week(WORKWEEK, "09:00-18:00"))
LUNCH = BusinessCalendar("Europe/Berlin", week(WORKWEEK, "09:00-13:00", "14:00-18:00"))


def test_one_hour_window_starting_1730_on_0900_1800_day_ends_0930_next_business_day():
    end = NINE_TO_SIX.add(local(BERLIN, 2026, 3, 3, 17, 30), timedelta(hours=1))
    assert end == local(BERLIN, 2026, 3, 4, 9, 30)
    assert end.tzinfo is UTC


def test_window_started_friday_evening_continues_on_monday():
    end = NINE_TO_SIX.add(local(BERLIN, 2026, 3, 6, 17), timedelta(hours=2))
    assert end == local(BERLIN, 2026, 3, 9, 10)


def test_holiday_on_monday_pushes_the_window_to_tuesday():
    calendar = BusinessCalendar("Europe/Berlin", week(WORKWEEK, "09:00-18:00"), {date(2026, 3, 9)})
    end = calendar.add(local(BERLIN, 2026, 3, 6, 17), timedelta(hours=2))
    assert end == local(BERLIN, 2026, 3, 10, 10)
    assert not calendar.is_open(local(BERLIN, 2026, 3, 9, 12))


def test_lunch_break_is_not_business_time():
    assert LUNCH.add(local(BERLIN, 2026, 3, 3, 12, 30), timedelta(hours=1)) == local(
        BERLIN, 2026, 3, 3, 14, 30
    )
    assert LUNCH.elapsed(local(BERLIN, 2026, 3, 3, 12), local(BERLIN, 2026, 3, 3, 15)) == timedelta(
        hours=2
    )
    assert not LUNCH.is_open(local(BERLIN, 2026, 3, 3, 13, 30))


def test_window_used_up_exactly_at_closing_time_ends_at_closing_time():
    assert NINE_TO_SIX.add(local(BERLIN, 2026, 3, 3, 17), timedelta(hours=1)) == local(
        BERLIN, 2026, 3, 3, 18
    )
    assert LUNCH.add(local(BERLIN, 2026, 3, 3, 12), timedelta(hours=1)) == local(
        BERLIN, 2026, 3, 3, 13
    )
    assert not NINE_TO_SIX.is_open(local(BERLIN, 2026, 3, 3, 18))


def test_add_of_zero_is_the_start_even_when_closed():
    start = local(BERLIN, 2026, 3, 7, 3)  # a Saturday night
    assert NINE_TO_SIX.add(start, timedelta(0)) == start
    assert NINE_TO_SIX.add(start, timedelta(0)).tzinfo is UTC
    assert NINE_TO_SIX.add(start, US) == local(BERLIN, 2026, 3, 9, 9) + US


def test_always_open_calendar_across_midnight_loses_no_minute():
    calendar = CALENDARS["always_open_berlin"]
    assert calendar.add(local(BERLIN, 2026, 6, 1, 23, 30), timedelta(hours=1)) == local(
        BERLIN, 2026, 6, 2, 0, 30
    )
    assert calendar.elapsed(local(BERLIN, 2026, 6, 1, 23), local(BERLIN, 2026, 6, 2, 1)) == (
        timedelta(hours=2)
    )
    assert calendar.is_open(local(BERLIN, 2026, 6, 2, 0, 0))


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("America/New_York", date(2026, 3, 8)),
        ("America/New_York", date(2026, 11, 1)),
        ("Europe/Berlin", date(2026, 3, 29)),
        ("Europe/Berlin", date(2026, 10, 25)),
    ],
    ids=["us_spring_forward", "us_fall_back", "eu_spring_forward", "eu_fall_back"],
)
def test_one_hour_window_at_0830_on_a_dst_morning_ends_0930_local(tz, day):
    calendar = BusinessCalendar(tz, week(ALL_WEEK, "08:00-20:00"))
    end = calendar.add(local(tz, day.year, day.month, day.day, 8, 30), timedelta(hours=1))
    assert end.astimezone(ZoneInfo(tz)).replace(tzinfo=None) == datetime(
        day.year, day.month, day.day, 9, 30
    )


def test_interval_over_the_skipped_spring_hour_is_shortened_not_shifted():
    calendar = BusinessCalendar("Europe/Berlin", week(ALL_WEEK, "00:00-06:00"))
    midnight = local(BERLIN, 2026, 3, 29, 0)
    assert calendar.elapsed(midnight, local(BERLIN, 2026, 3, 30, 0)) == timedelta(hours=5)
    assert calendar.add(midnight, timedelta(hours=5)) == local(BERLIN, 2026, 3, 29, 6)
    assert calendar.add(midnight, timedelta(hours=2)) == local(BERLIN, 2026, 3, 29, 3)


def test_interval_inside_the_skipped_hour_has_no_business_time():
    calendar = BusinessCalendar("Europe/Berlin", {"sun": ["02:00-02:30"]})
    assert calendar.elapsed(local(BERLIN, 2026, 3, 28), local(BERLIN, 2026, 3, 30)) == timedelta(0)
    assert calendar.elapsed(local(BERLIN, 2026, 4, 4), local(BERLIN, 2026, 4, 6)) == timedelta(
        minutes=30
    )


def test_repeated_autumn_hour_counts_twice():
    calendar = BusinessCalendar("Europe/Berlin", week(ALL_WEEK, "00:00-06:00"))
    midnight = local(BERLIN, 2026, 10, 25, 0)
    assert calendar.elapsed(midnight, local(BERLIN, 2026, 10, 26, 0)) == timedelta(hours=7)
    # Three hours after midnight it is 02:00 for the second time (winter time).
    assert calendar.add(midnight, timedelta(hours=3)) == utc(BERLIN, 2026, 10, 25, 2, fold=1)


def test_interval_inside_the_repeated_hour_is_open_in_both_occurrences():
    calendar = BusinessCalendar("Europe/Berlin", {"sun": ["02:00-02:45"]})
    assert calendar.elapsed(local(BERLIN, 2026, 10, 24), local(BERLIN, 2026, 10, 26)) == (
        timedelta(minutes=90)
    )
    assert calendar.is_open(local(BERLIN, 2026, 10, 25, 2, 10, fold=0))
    assert not calendar.is_open(local(BERLIN, 2026, 10, 25, 2, 50, fold=0))
    assert calendar.is_open(local(BERLIN, 2026, 10, 25, 2, 10, fold=1))
    start = local(BERLIN, 2026, 10, 25, 2, 30, fold=0)
    assert calendar.add(start, timedelta(minutes=30)) == utc(BERLIN, 2026, 10, 25, 2, 15, fold=1)


def test_asia_kolkata_half_hour_offset():
    calendar = BusinessCalendar("Asia/Kolkata", week(WORKWEEK, "09:00-18:00"))
    start = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)  # 17:30 IST
    assert calendar.add(start, timedelta(hours=1)) == datetime(2026, 6, 2, 4, 0, tzinfo=UTC)


def test_asia_kathmandu_quarter_hour_offset():
    calendar = BusinessCalendar("Asia/Kathmandu", week(WORKWEEK, "09:00-18:00"))
    start = datetime(2026, 6, 1, 11, 45, tzinfo=UTC)  # 17:30 NPT
    assert calendar.add(start, timedelta(hours=1)) == datetime(2026, 6, 2, 3, 45, tzinfo=UTC)
    assert calendar.is_open(datetime(2026, 6, 2, 3, 15, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 6, 2, 3, 14, 59, tzinfo=UTC))


def test_friday_saturday_weekend_market():
    calendar = CALENDARS["fri_sat_weekend"]
    dubai = ZoneInfo("Asia/Dubai")
    end = calendar.add(local(dubai, 2026, 6, 4, 16), timedelta(hours=2))  # a Thursday
    assert end == local(dubai, 2026, 6, 7, 9)  # Sunday


def test_extra_open_date_with_own_hours():
    calendar = BusinessCalendar(
        "Europe/Berlin",
        week(WORKWEEK, "09:00-18:00"),
        open_dates={date(2026, 3, 7): ["10:00-14:00"]},
    )
    assert calendar.add(local(BERLIN, 2026, 3, 6, 17), timedelta(hours=2)) == local(
        BERLIN, 2026, 3, 7, 11
    )
    assert not calendar.is_open(local(BERLIN, 2026, 3, 7, 9, 30))


def test_extra_open_weekend_day_without_own_hours_uses_the_first_weekday_with_hours():
    hours = week(("sun", "mon", "tue", "wed", "thu"), "08:00-17:00")
    hours["mon"] = ["07:00-16:00"]
    calendar = BusinessCalendar("Asia/Dubai", hours, open_dates={date(2026, 6, 5)})  # a Friday
    dubai = ZoneInfo("Asia/Dubai")
    assert calendar.is_open(local(dubai, 2026, 6, 5, 7, 30))
    assert not calendar.is_open(local(dubai, 2026, 6, 5, 16, 30))


def test_extra_open_date_overrides_a_closed_date():
    calendar = BusinessCalendar(
        "Europe/Berlin", week(WORKWEEK, "09:00-18:00"), {date(2026, 3, 9)}, {date(2026, 3, 9)}
    )
    assert calendar.is_open(local(BERLIN, 2026, 3, 9, 12))


def test_parsed_hours_and_stored_open_dates_are_accepted():
    raw = week(WORKWEEK, "09:00-13:00", "14:00-18:00")
    stored_open = [{"date": "2026-03-07", "hours": ["10:00-14:00"]}, "2026-03-08"]
    from_raw = BusinessCalendar("Europe/Berlin", raw, ["2026-03-09"], stored_open)
    parsed = BusinessCalendar(
        "Europe/Berlin", parse_week(raw), {date(2026, 3, 9)}, parse_open_dates(stored_open)
    )
    start = local(BERLIN, 2026, 3, 6, 17)
    for hours in (1, 5, 9, 30):
        assert from_raw.add(start, timedelta(hours=hours)) == parsed.add(
            start, timedelta(hours=hours)
        )


def test_bad_input_is_refused_with_a_clear_error():
    with pytest.raises(HoursError, match="IANA"):
        BusinessCalendar("Mars/Olympus", {})
    with pytest.raises(HoursError, match="overlap"):
        BusinessCalendar("UTC", {"mon": ["09:00-13:00", "12:00-18:00"]})
    with pytest.raises(HoursError, match="unknown day"):
        BusinessCalendar("UTC", {"monday": ["09:00-18:00"]})
    with pytest.raises(ValueError, match="negative"):
        NINE_TO_SIX.add(local(BERLIN, 2026, 3, 3, 10), timedelta(hours=-1))
    with pytest.raises(ValueError):
        NINE_TO_SIX.add_days(local(BERLIN, 2026, 3, 3, 10), -1)


@pytest.mark.parametrize("calendar", [NINE_TO_SIX, ALWAYS_OPEN], ids=["business", "always_open"])
def test_naive_datetime_is_refused(calendar):
    naive = datetime(2026, 3, 3, 10)
    aware = local(BERLIN, 2026, 3, 3, 10)
    calls = [
        lambda: calendar.is_open(naive),
        lambda: calendar.next_open(naive),
        lambda: calendar.add(naive, timedelta(hours=1)),
        lambda: calendar.add(naive, timedelta(0)),
        lambda: calendar.elapsed(naive, aware),
        lambda: calendar.elapsed(aware, naive),
        lambda: calendar.add_days(naive, 1),
    ]
    for call in calls:
        with pytest.raises(NaiveDatetimeError, match="naive"):
            call()
    assert issubclass(NaiveDatetimeError, ValueError)


def test_calendar_without_hours_has_no_business_time():
    calendar = BusinessCalendar("UTC", {})
    start = datetime(2026, 3, 3, tzinfo=UTC)
    assert not calendar.is_open(start)
    assert calendar.elapsed(start, start + timedelta(days=30)) == timedelta(0)
    with pytest.raises(NoBusinessTimeError):
        calendar.add(start, timedelta(hours=1))
    with pytest.raises(NoBusinessTimeError):
        calendar.next_open(start)


def test_index_built_from_a_later_date_first_gives_the_same_answers():
    fresh = BusinessCalendar(*CALENDAR_ARGS["holidays_and_open_dates"])
    warmed = BusinessCalendar(*CALENDAR_ARGS["holidays_and_open_dates"])
    warmed.add(datetime(2031, 1, 1, tzinfo=UTC), timedelta(hours=1))  # builds from 2031 first
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2027, 1, 15, tzinfo=UTC)
    assert warmed.elapsed(start, end) == fresh.elapsed(start, end)
    assert warmed.add(start, timedelta(hours=500)) == fresh.add(start, timedelta(hours=500))
    assert warmed.add_days(start, 40) == fresh.add_days(start, 40)


# --- examples: add_days (Nbd) ----------------------------------------------------------------


def test_five_business_days_across_a_holiday():
    calendar = BusinessCalendar("Europe/Berlin", week(WORKWEEK, "09:00-18:00"), {date(2026, 3, 4)})
    start = local(BERLIN, 2026, 3, 2, 10)  # Monday; Wednesday is a holiday
    deadline = calendar.add_days(start, 5)
    assert deadline == local(BERLIN, 2026, 3, 10, 10)
    assert calendar.elapsed(start, deadline) == timedelta(hours=45)


def test_one_business_day_is_the_same_local_time_next_business_day():
    assert NINE_TO_SIX.add_days(local(BERLIN, 2026, 3, 6, 10), 1) == local(BERLIN, 2026, 3, 9, 10)


def test_business_days_from_a_night_start_end_at_a_closing_time():
    # The start counts from Monday 09:00; Tuesday 09:00 has the same business time as the
    # Monday close, and the deadline is the earliest such instant.
    sunday_night = local(BERLIN, 2026, 3, 1, 22)
    assert NINE_TO_SIX.add_days(sunday_night, 1) == local(BERLIN, 2026, 3, 2, 18)
    assert NINE_TO_SIX.add_days(sunday_night, 2) == local(BERLIN, 2026, 3, 3, 18)


def test_business_days_from_a_lunch_break_count_from_the_reopening():
    assert LUNCH.add_days(local(BERLIN, 2026, 3, 2, 13, 30), 1) == local(BERLIN, 2026, 3, 3, 13)
    assert LUNCH.add_days(local(BERLIN, 2026, 3, 2, 15), 1) == local(BERLIN, 2026, 3, 3, 15)


def test_business_days_onto_a_shorter_day_clamp_to_its_closing_time():
    hours = week(WORKWEEK, "09:00-18:00") | {"sat": ["09:00-13:00"]}
    calendar = BusinessCalendar("Europe/Berlin", hours)
    assert calendar.add_days(local(BERLIN, 2026, 3, 6, 15), 1) == local(BERLIN, 2026, 3, 7, 13)
    assert calendar.add_days(local(BERLIN, 2026, 3, 6, 11), 1) == local(BERLIN, 2026, 3, 7, 11)


def test_business_days_landing_in_a_dst_gap_end_after_the_gap():
    calendar = CALENDARS["always_open_berlin"]
    start = local(BERLIN, 2026, 3, 28, 2, 30)
    assert calendar.add_days(start, 1) == local(BERLIN, 2026, 3, 29, 3, 0)


def test_business_days_keep_the_local_time_across_dst():
    calendar = BusinessCalendar("America/New_York", week(ALL_WEEK, "08:00-20:00"))
    deadline = calendar.add_days(local(NEW_YORK, 2026, 3, 6, 8, 30), 2)
    assert deadline == local(NEW_YORK, 2026, 3, 8, 8, 30)
    assert calendar.elapsed(local(NEW_YORK, 2026, 3, 6, 8, 30), deadline) == timedelta(hours=24)


def test_zero_business_days_is_the_start():
    start = local(BERLIN, 2026, 3, 7, 3)
    assert NINE_TO_SIX.add_days(start, 0) == start


# --- the wall clock --------------------------------------------------------------------------


def test_always_open_clock_is_the_wall_clock():
    start = local(BERLIN, 2026, 3, 28, 12)  # the day before spring forward
    assert ALWAYS_OPEN.add(start, timedelta(hours=24)) == datetime(2026, 3, 29, 11, tzinfo=UTC)
    assert ALWAYS_OPEN.add_days(start, 2) == datetime(2026, 3, 30, 11, tzinfo=UTC)
    assert ALWAYS_OPEN.elapsed(start, local(BERLIN, 2026, 3, 29, 12)) == timedelta(hours=23)
    assert ALWAYS_OPEN.elapsed(local(BERLIN, 2026, 3, 29, 12), start) == timedelta(0)
    assert ALWAYS_OPEN.is_open(start)
    assert ALWAYS_OPEN.next_open(start) == start
    assert ALWAYS_OPEN.add(start, timedelta(0)).tzinfo is UTC


# --- builders --------------------------------------------------------------------------------


def german_market(**changes):
    fields = {
        "pk": 1,
        "timezone": "Europe/Berlin",
        "hours": week(WORKWEEK, "09:00-18:00"),
        "holiday_country": "DE",
        "holiday_subdivision": "",
        "extra_closed_dates": [],
        "extra_open_dates": [],
    }
    return SimpleNamespace(**(fields | changes))


@pytest.fixture(autouse=False)
def empty_cache():
    clear_calendar_cache()
    yield
    clear_calendar_cache()


def test_calendar_for_market_closes_german_christmas(empty_cache):
    calendar = calendar_for_market(german_market(), range(2026, 2028))
    assert not calendar.is_open(local(BERLIN, 2026, 12, 25, 10))
    assert not calendar.is_open(local(BERLIN, 2026, 12, 26, 10))
    assert calendar.is_open(local(BERLIN, 2026, 12, 24, 10))
    end = calendar.add(local(BERLIN, 2026, 12, 24, 17), timedelta(hours=2))
    assert end == local(BERLIN, 2026, 12, 28, 10)
    assert not calendar.is_open(local(BERLIN, 2027, 1, 1, 10))


def test_calendar_for_market_extra_dates(empty_cache):
    market = german_market(
        extra_closed_dates=["2026-12-24"],
        extra_open_dates=["2026-12-25", {"date": "2026-12-27", "hours": ["10:00-12:00"]}],
    )
    calendar = calendar_for_market(market, range(2026, 2027))
    assert not calendar.is_open(local(BERLIN, 2026, 12, 24, 10))
    assert calendar.is_open(local(BERLIN, 2026, 12, 25, 10))  # overrides the holiday
    assert calendar.is_open(local(BERLIN, 2026, 12, 27, 11))  # a Sunday with own hours


def test_calendar_for_market_subdivision_holidays(empty_cache):
    bavaria = calendar_for_market(german_market(holiday_subdivision="BY"), range(2026, 2027))
    berlin = calendar_for_market(german_market(pk=2), range(2026, 2027))
    epiphany = local(BERLIN, 2026, 1, 6, 10)
    assert not bavaria.is_open(epiphany)
    assert berlin.is_open(epiphany)


def test_calendar_for_market_is_cached_until_the_market_changes(empty_cache):
    market = german_market()
    first = calendar_for_market(market, range(2026, 2027))
    assert calendar_for_market(market, range(2026, 2027)) is first
    market.hours = week(WORKWEEK, "08:00-17:00")
    edited = calendar_for_market(market, range(2026, 2027))
    assert edited is not first
    assert edited.is_open(local(BERLIN, 2026, 3, 3, 8, 30))
    clear_calendar_cache()
    assert calendar_for_market(market, range(2026, 2027)) is not edited


def test_calendar_for_market_refuses_an_unknown_country(empty_cache):
    with pytest.raises(HoursError, match="XX"):
        calendar_for_market(german_market(holiday_country="XX"), range(2026, 2027))


def test_rep_without_own_hours_works_the_market_calendar_with_its_holidays(empty_cache):
    market = german_market()
    rep = SimpleNamespace(pk=7, hours=None, timezone="", team=SimpleNamespace(market=market))
    calendar = calendar_for_rep(rep, range(2026, 2027))
    assert calendar is calendar_for_market(market, range(2026, 2027))
    assert not calendar.is_open(local(BERLIN, 2026, 12, 25, 10))


def test_rep_with_own_hours_uses_own_zone_and_no_market_holidays(empty_cache):
    market = german_market()
    rep = SimpleNamespace(
        pk=8,
        hours=week(WORKWEEK, "09:00-17:00"),
        timezone="Europe/Lisbon",
        team=SimpleNamespace(market=market),
    )
    calendar = calendar_for_rep(rep, range(2026, 2027))
    lisbon = ZoneInfo("Europe/Lisbon")
    assert calendar.is_open(local(lisbon, 2026, 12, 25, 16, 30))
    assert not calendar.is_open(local(lisbon, 2026, 12, 25, 8, 30))
    rep.timezone = ""
    assert calendar_for_rep(rep, range(2026, 2027)).timezone == "Europe/Berlin"
