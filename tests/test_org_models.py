"""Validation of the org models: time zones, hour intervals, capacity, managers, time off."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from teams.hours import HoursError, normalize_week, parse_day
from teams.models import Role, TimeOff
from tests.conftest import berlin
from tests.factories import MarketFactory, RepFactory, TeamFactory


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "UTC"])
def test_iana_time_zones_are_accepted(db, zone):
    MarketFactory.build(code="X", timezone=zone).full_clean()


@pytest.mark.parametrize("zone", ["Asia/Bangalore", "IST", "GMT+5:30", "", "europe/berlin"])
def test_unknown_time_zones_are_refused(db, zone):
    with pytest.raises(ValidationError) as err:
        MarketFactory.build(code="X", timezone=zone).full_clean()
    assert "timezone" in err.value.message_dict


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        (["09:00-13:00", "12:30-18:00"], "overlap"),
        (["18:00-09:00"], "must start before it ends"),
        (["09:00-09:00"], "must start before it ends"),
        (["9-17"], "is not an interval"),
        (["09:00-24:30"], "does not exist"),
        (["25:00-26:00"], "does not exist"),
        ("09:00-17:00", "must be a list"),
    ],
)
def test_malformed_hours_are_refused_naming_the_day(db, intervals, message):
    with pytest.raises(ValidationError) as err:
        MarketFactory.build(code="X", hours={"mon": ["08:00-09:00"], "wed": intervals}).full_clean()
    text = " ".join(err.value.message_dict["hours"])
    assert text.startswith("wed:") and message in text


def test_several_intervals_a_day_and_a_midnight_end_are_fine(db):
    market = MarketFactory.build(
        code="X",
        hours={
            "mon": ["14:00-18:00", "09:00-13:00"],
            "fri": ["22:00-24:00"],
            "sat": ["00:00-06:00"],
        },
    )
    market.full_clean()
    assert normalize_week(market.hours)["mon"] == ["09:00-13:00", "14:00-18:00"]


def test_touching_intervals_do_not_overlap():
    assert parse_day(["09:00-12:00", "12:00-18:00"]) == [(540, 720), (720, 1080)]


def test_a_week_without_any_hours_is_refused(db):
    with pytest.raises(ValidationError, match="at least one day"):
        MarketFactory.build(code="X", hours={"mon": [], "sat": []}).full_clean()


def test_unknown_day_name_is_refused():
    with pytest.raises(HoursError, match="unknown day"):
        normalize_week({"monday": ["09:00-17:00"]})


def test_rep_with_own_zone_and_hours_validates(db):
    rep = RepFactory.build(
        team=TeamFactory(), timezone="America/Chicago", hours={"tue": ["11:00-19:00"]}
    )
    rep.full_clean()
    with pytest.raises(ValidationError):
        RepFactory.build(team=rep.team, timezone="Mars/Olympus").full_clean()


def test_negative_capacity_is_refused(db):
    with pytest.raises(ValidationError) as err:
        RepFactory.build(team=TeamFactory(), capacity=-1).full_clean()
    assert "capacity" in err.value.message_dict


def test_a_team_has_one_manager_at_most(db):
    team = TeamFactory()
    RepFactory(team=team, role=Role.MANAGER)
    second = RepFactory.build(team=team, role=Role.MANAGER)
    with pytest.raises(ValidationError, match="already has a manager"):
        second.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_time_off_must_end_after_it_starts(db):
    rep = RepFactory(team=TeamFactory())
    bad = TimeOff(rep=rep, start=berlin(2026, 12, 3, 0, 0), end=berlin(2026, 12, 1, 0, 0))
    with pytest.raises(ValidationError, match="end after it starts"):
        bad.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        bad.save()


def test_holiday_subdivision_must_exist_for_the_country(db):
    with pytest.raises(ValidationError) as err:
        MarketFactory.build(code="X", holiday_country="DE", holiday_subdivision="XX").full_clean()
    assert "holiday_subdivision" in err.value.message_dict


def test_team_with_leads_cannot_move_to_another_market(org, policies):
    from tests.factories import make_lead

    make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    org.berlin_team.market = org.india
    with pytest.raises(ValidationError, match="across markets"):
        org.berlin_team.full_clean()
