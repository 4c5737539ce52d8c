"""Calibration (SPEC §11): each figure checked on a hand-built history with a known answer."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings

from audit import calibration, log
from audit.models import AuditEvent, AuditKind
from escalations.models import Reassignment, SlaTimer
from escalations.reassign import revert_reassignment
from escalations.sweep import run_sweep
from leadops import lifecycle
from tests.conftest import berlin
from tests.factories import make_lead

K = AuditKind
Q4 = calibration.quarter("2026Q4")
NOW = datetime(2027, 1, 15, tzinfo=UTC)
_timer_ids = count(900_000)


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _report(**kwargs):
    return calibration.build_report(Q4, now=NOW, **kwargs)


def _history(lead, *events, started=datetime(2026, 11, 2, 9, tzinfo=UTC)):
    """Events of one timer of `lead`, written straight into the log: (kind, elapsed, details)."""
    timer_id = next(_timer_ids)
    for i, (kind, elapsed, details) in enumerate(events):
        AuditEvent.objects.create(
            kind=kind,
            lead=lead,
            team_id=lead.team_id,
            timer_id=timer_id,
            timer_started_at=started,
            occurred_at=started + timedelta(minutes=i + 1),
            state="NEW",
            policy_id=1,
            policy_version=1,
            window="1h",
            elapsed=elapsed,
            details=details,
        )
    return timer_id


def _met(lead, elapsed, outcome="met"):
    return _history(lead, (K.SLA_MET, elapsed, {"outcome": outcome}))


def _breached(lead):
    return _history(lead, (K.SLA_WARNING, None, {}), (K.SLA_BREACH, None, {}))


def _row(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_quarter_and_last_full_quarter_are_utc_ranges():
    assert Q4.start == datetime(2026, 10, 1, tzinfo=UTC)
    assert Q4.end == datetime(2027, 1, 1, tzinfo=UTC)
    assert calibration.last_full_quarter(datetime(2027, 2, 3, tzinfo=UTC)).label == "2026Q4"
    assert calibration.last_full_quarter(datetime(2026, 8, 3, tzinfo=UTC)).label == "2026Q2"
    with pytest.raises(calibration.PeriodError):
        calibration.quarter("2026Q5")


def test_nearest_rank_percentiles_with_few_points_and_with_ties(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    for minutes in (60, 120, 120, 180, 600):
        _met(lead, timedelta(minutes=minutes))
    single = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena)
    _met(single, timedelta(minutes=30))
    tied = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha)
    _met(tied, timedelta(minutes=45))
    _met(tied, timedelta(minutes=45))

    rows = _report().by_source
    five = _row(rows, market="DE", source="paid_social")
    # Ranks ceil(5 × 0.5) = 3 and ceil(5 × 0.9) = 5 of 1h, 2h, 2h, 3h, 10h.
    assert (five["p50_to_progress"], five["p90_to_progress"]) == (
        timedelta(hours=2),
        timedelta(hours=10),
    )
    one = _row(rows, market="DE", source="inbound_web")
    assert one["p50_to_progress"] == one["p90_to_progress"] == timedelta(minutes=30)
    two = _row(rows, market="IN", source="paid_social")
    assert two["p50_to_progress"] == two["p90_to_progress"] == timedelta(minutes=45)
    assert (five["timers"], five["leads"], five["met"]) == (5, 1, 5)


def test_time_to_progress_is_business_time_across_a_weekend_and_a_holiday(org, policies):
    # Thu 24 Dec 17:30 Berlin, 1 h window, 09:00-18:00; Fri 25 Dec is a holiday, then the
    # weekend: the call on Mon 28 Dec 09:45 came after 30 + 45 = 75 business minutes.
    with _at(berlin(2026, 12, 24, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 28, 9, 45)):
        lifecycle.record_activity(lead, "call", actor=org.lena)

    row = _row(_report().by_state, market="DE", source="paid_social", state="NEW")
    assert row["p50_to_progress"] == timedelta(minutes=75)
    assert (row["met"], row["met_late"], row["breached"]) == (0, 1, 0)
    assert row["breach_rate"] == 0.0


def test_a_reverted_auto_reassignment_is_counted_as_a_misfire(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 3, 9, 18))
    run_sweep(now=berlin(2026, 12, 3, 9, 30))
    run_sweep(now=berlin(2026, 12, 3, 10, 0))
    reassignment = Reassignment.objects.get(lead=lead)
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "x")
    revert_reassignment(
        reassignment, actor=boss, reason="Lena knows them", now=berlin(2026, 12, 3, 10, 5)
    )

    report = _report()
    team = _row(report.teams, team="de-berlin")
    assert (team["auto_reassignments"], team["reverts"], team["timers"]) == (1, 1, 2)
    assert team["reassignment_rate"] == 0.5
    source = _row(report.by_source, market="DE", source="paid_social")
    assert (source["breached"], source["settled"], source["breach_rate"]) == (1, 2, 0.5)
    policy = _row(report.policies, policy_id=policies["NEW"].pk, policy_version=1)
    assert (policy["breaches"], policy["reverts"]) == (1, 1)


def _sent(lead, timer, at, *, kind="warning", persona="owner"):
    with transaction.atomic():
        log.record(
            K.NOTIFICATION_SENT,
            lead=lead,
            timer=timer,
            occurred_at=at,
            details={"kind": kind, "persona": persona},
        )


def test_a_warning_followed_by_progress_is_acted_on_and_one_overtaken_by_the_breach_ignored(
    org, policies
):
    with _at(berlin(2026, 12, 2, 10, 0)):
        quick = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        slow = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.felix)
    quick_timer = SlaTimer.objects.get(lead=quick)
    slow_timer = SlaTimer.objects.get(lead=slow)
    run_sweep(now=berlin(2026, 12, 2, 10, 48))  # both warned
    _sent(quick, quick_timer, berlin(2026, 12, 2, 10, 49))
    _sent(slow, slow_timer, berlin(2026, 12, 2, 10, 49))
    with _at(berlin(2026, 12, 2, 10, 55)):
        lifecycle.record_activity(quick, "call", actor=org.lena)  # 6 minutes after the message
    run_sweep(now=berlin(2026, 12, 2, 11, 0))  # the slow lead breaches
    with _at(berlin(2026, 12, 2, 11, 20)):
        lifecycle.record_activity(slow, "call", actor=org.felix)  # progress, but too late

    row = _row(_report().notifications, persona="owner", team="de-berlin")
    assert (row["sent"], row["stage_messages"], row["acted_on"], row["ignored"]) == (2, 2, 1, 1)
    assert row["p50_to_action"] == timedelta(minutes=6)
    assert row["ignored_rate"] == 0.5


@override_settings(CALIBRATION_MIN_TIMERS=4, CALIBRATION_BREACH_RATE_PERCENT=25)
def test_a_breach_rate_is_a_finding_at_its_threshold_and_only_over_the_minimum_count(org):
    at_threshold = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    _breached(at_threshold)
    for _ in range(3):
        _met(at_threshold, timedelta(minutes=20))
    too_few = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha)
    for _ in range(3):
        _breached(too_few)  # 100 % of 3 timers: below the minimum
    below = make_lead(team=org.india_team, source=org.inbound_web, owner=org.asha)
    _breached(below)
    for _ in range(4):
        _met(below, timedelta(minutes=20))  # 20 % of 5

    found = [f for f in _report().findings if f.code == "breach_rate"]
    assert [(f.rows["market"], f.rows["source"]) for f in found] == [("DE", "paid_social")]
    assert found[0].figure == "1 of 4 timers (threshold 25 %)"
    assert "too aggressive" in found[0].text


@override_settings(CALIBRATION_MIN_TIMERS=2, CALIBRATION_REASSIGN_RATE_PERCENT=50)
def test_frequent_auto_reassignment_in_a_team_is_a_routing_finding(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    _history(lead, (K.SLA_BREACH, None, {}), (K.SLA_BREACH_AUTO_REASSIGN, None, {}))
    _met(lead, timedelta(minutes=5))
    found = [f for f in _report().findings if f.code == "reassign_rate"]
    assert [f.rows["team"] for f in found] == ["de-berlin"]
    assert "routing rule" in found[0].text


def test_the_report_keeps_to_the_period_the_market_and_the_teams_asked_for(org):
    berlin_lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    india_lead = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha)
    _met(berlin_lead, timedelta(minutes=5))
    _met(india_lead, timedelta(minutes=5))
    _history(
        berlin_lead,
        (K.SLA_MET, timedelta(minutes=9), {"outcome": "met"}),
        started=datetime(2026, 9, 30, 23, 59, tzinfo=UTC),  # the quarter before
    )
    assert {r["market"] for r in _report().by_source} == {"DE", "IN"}
    assert _row(_report().by_source, market="DE")["timers"] == 1
    assert {r["market"] for r in _report(market="IN").by_source} == {"IN"}
    scoped = _report(team_ids={org.india_team.pk})
    assert {r["market"] for r in scoped.by_source} == {"IN"}
    assert [t["team"] for t in scoped.teams] == ["in-inside"]
    assert {r["team"] for r in scoped.reps} == {"in-inside"}


def _calibrate(*args) -> str:
    out = io.StringIO()
    call_command("calibrate", *args, stdout=out)
    return out.getvalue()


@override_settings(CALIBRATION_MIN_TIMERS=2)
def test_calibrate_prints_findings_first_then_the_tables(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    _breached(lead)
    _met(lead, timedelta(minutes=75), outcome="met_late")
    text = _calibrate("--quarter", "2026Q4")
    assert text.index("Findings") < text.index("Timers per market and source")
    assert "Germany · Paid social: 50 % of timers breached" in text
    assert "1 h 15 min" in text


def test_calibrate_json_keeps_codes_beside_names(org):
    lead = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha)
    _met(lead, timedelta(minutes=30))
    data = json.loads(_calibrate("--quarter", "2026Q4", "--format", "json", "--market", "IN"))
    assert data["period"]["label"] == "2026Q4"
    (row,) = data["by_source"]
    assert (row["market"], row["market_name"], row["source"], row["source_name"]) == (
        "IN",
        "India",
        "paid_social",
        "Paid social",
    )
    assert row["p50_to_progress"] == 1800  # seconds
    assert {t["team"]: t["team_name"] for t in data["teams"]} == {"in-inside": "India inside sales"}


def test_calibrate_csv_writes_one_table_with_seconds_and_fractions(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    _breached(lead)
    _met(lead, timedelta(minutes=90))
    rows = list(
        csv.DictReader(
            io.StringIO(_calibrate("--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv"))
        )
    )
    (row,) = rows
    assert (row["market"], row["state"], row["timers"], row["breached"]) == ("DE", "NEW", "2", "1")
    assert (row["breach_rate"], row["p50_to_progress"]) == ("0.5", "5400")
    teams = _calibrate("--quarter", "2026Q4", "--format", "csv", "--table", "teams")
    assert teams.splitlines()[0].startswith("team,team_name,market,timers")


def test_calibrate_refuses_a_bad_period_or_market(org):
    with pytest.raises(CommandError, match="2026Q3"):
        _calibrate("--quarter", "Q3")
    with pytest.raises(CommandError, match="both"):
        _calibrate("--from", "2026-01-01")
    with pytest.raises(CommandError, match="no market 'XX'"):
        _calibrate("--market", "XX")
