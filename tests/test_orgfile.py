"""The org file (SPEC §13): round trip, and bad files that change nothing and say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from escalations.models import SlaPolicy, SlaThresholds
from escalations.orgfile import OrgFileError, dump_document, export_document, load_org
from leadops.demo import ORG_FILE
from leadops.models import Source
from teams.models import Market, Rep, Team, TimeOff

MINIMAL = {
    "thresholds": {"warn": 75, "breach": 100, "reassign": 160},
    "markets": [
        {
            "code": "IN",
            "name": "India",
            "timezone": "Asia/Kolkata",
            "holidays": {"country": "IN", "extra_closed": ["2026-12-31"], "extra_open": []},
            "hours": {d: ["09:30-18:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
        }
    ],
    "sources": [
        {"code": "paid_social", "name": "Paid social"},
        {"code": "inbound_web", "name": "Inbound web"},
    ],
    "teams": [
        {
            "slug": "in-inside",
            "name": "India inside sales",
            "market": "IN",
            "slack_channel": "C0123",
            "teams_webhook": None,
        }
    ],
    "reps": [
        {
            "email": "asha@example.com",
            "name": "Asha Rao",
            "team": "in-inside",
            "role": "rep",
            "slack_user_id": "U01",
            "capacity": 40,
            "hours": None,
            "timezone": None,
            "active": True,
            "pto": [{"start": "2026-12-01T00:00:00+05:30", "end": "2026-12-03T00:00:00+05:30"}],
        },
        {
            "email": "vik@example.com",
            "name": "Vikram Shah",
            "team": "in-inside",
            "role": "manager",
            "slack_user_id": "U02",
        },
    ],
    "sla_policies": [
        {"state": "NEW", "window": "1h", "clock": "business"},
        {"state": "NEW", "source": "paid_social", "window": "1h", "clock": "business"},
        {
            "state": "NEW",
            "market": "IN",
            "source": "inbound_web",
            "window": "2h",
            "clock": "business",
        },
        {"state": "QUALIFIED", "window": "5bd", "clock": "business"},
    ],
}


def _write(tmp_path: Path, doc, name="org.yaml") -> Path:
    path = tmp_path / name
    if isinstance(doc, str):
        path.write_text(doc)
    elif name.endswith(".json"):
        path.write_text(json.dumps(doc))
    else:
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _snapshot():
    return {
        "markets": list(Market.objects.values().order_by("code")),
        "teams": list(Team.objects.values().order_by("slug")),
        "reps": list(Rep.objects.values().order_by("email")),
        "pto": list(TimeOff.objects.values("rep_id", "start", "end").order_by("start")),
        "sources": list(Source.objects.values().order_by("code")),
        "policies": list(SlaPolicy.objects.values().order_by("pk")),
        "thresholds": list(SlaThresholds.objects.values()),
    }


@pytest.mark.django_db
def test_minimal_org_file_creates_everything(tmp_path):
    report = load_org(_write(tmp_path, MINIMAL))
    assert report.created == {
        "markets": 1,
        "sources": 2,
        "teams": 1,
        "reps": 2,
        "pto": 1,
        "sla_policies": 4,
    }
    asha = Rep.objects.get(email="asha@example.com")
    assert asha.capacity == 40 and asha.team.slug == "in-inside"
    assert asha.time_off.get().reason == ""
    thresholds = SlaThresholds.objects.get()
    assert (thresholds.warn_percent, thresholds.reassign_percent) == (75, 160)
    policy = SlaPolicy.objects.get(market__code="IN", source__code="inbound_web")
    assert policy.window == "2h"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["org.yaml", "org.json"])
def test_org_file_round_trips_through_export(tmp_path, name):
    load_org(_write(tmp_path, MINIMAL, name))
    exported = export_document()
    before = _snapshot()
    report = load_org(_write(tmp_path, exported, "again.json"))
    assert report.created == {} and report.updated == {}
    assert _snapshot() == before
    assert export_document() == exported


@pytest.mark.django_db
def test_demo_org_round_trips_and_loading_twice_changes_nothing(tmp_path):
    load_org(ORG_FILE)
    versions = dict(SlaPolicy.objects.values_list("pk", "version"))
    history = SlaPolicy.history.count()
    text = dump_document(export_document(), "yaml")
    report = load_org(_write(tmp_path, text))
    assert report.updated == {}
    assert dict(SlaPolicy.objects.values_list("pk", "version")) == versions
    assert SlaPolicy.history.count() == history
    assert dump_document(export_document(), "yaml") == text


@pytest.mark.django_db
def test_export_order_is_stable(tmp_path):
    load_org(ORG_FILE)
    doc = export_document()
    assert [m["code"] for m in doc["markets"]] == sorted(m["code"] for m in doc["markets"])
    assert [r["email"] for r in doc["reps"]] == sorted(r["email"] for r in doc["reps"])
    states = [p["state"] for p in doc["sla_policies"]]
    assert states.index("NEW") < states.index("CONTACTED") < states.index("PROPOSAL")


@pytest.mark.django_db
def test_changed_policy_window_bumps_its_version(tmp_path):
    load_org(_write(tmp_path, MINIMAL))
    policy = SlaPolicy.objects.get(state="QUALIFIED")
    doc = json.loads(json.dumps(MINIMAL))
    doc["sla_policies"][3]["window"] = "3bd"
    report = load_org(_write(tmp_path, doc))
    policy.refresh_from_db()
    assert report.updated == {"sla_policies": 1}
    assert (policy.window, policy.version) == ("3bd", 2)
    assert policy.history.first().history_change_reason == "org file org.yaml"


def _broken(mutate):
    doc = json.loads(json.dumps(MINIMAL))
    mutate(doc)
    return doc


BAD_FILES = {
    "unknown top-level key": (_broken(lambda d: d.update(people=[])), "unknown top-level key"),
    "bad time zone": (
        _broken(lambda d: d["markets"][0].update(timezone="Asia/Bangalore")),
        "markets[0] (IN), field 'timezone'",
    ),
    "overlapping intervals": (
        _broken(lambda d: d["markets"][0]["hours"].update(mon=["09:00-13:00", "12:00-18:00"])),
        "markets[0] (IN), field 'hours': mon: intervals 09:00-13:00 and 12:00-18:00 overlap",
    ),
    "interval ending before it starts": (
        _broken(lambda d: d["markets"][0]["hours"].update(tue=["18:00-09:00"])),
        "field 'hours': tue",
    ),
    "team of an unknown market": (
        _broken(lambda d: d["teams"][0].update(market="XX")),
        "teams[0] (in-inside), field 'market': no market 'XX'",
    ),
    "rep of an unknown team": (
        _broken(lambda d: d["reps"][0].update(team="nobody")),
        "reps[0] (asha@example.com), field 'team'",
    ),
    "negative capacity": (
        _broken(lambda d: d["reps"][0].update(capacity=-1)),
        "reps[0] (asha@example.com), field 'capacity'",
    ),
    "bad window": (
        _broken(lambda d: d["sla_policies"][0].update(window="1 day")),
        "sla_policies[0] (NEW), field 'window'",
    ),
    "unknown state": (
        _broken(lambda d: d["sla_policies"][0].update(state="STUCK")),
        "sla_policies[0] (STUCK), field 'state'",
    ),
    "duplicate policy": (
        _broken(lambda d: d["sla_policies"].append({"state": "NEW", "window": "2h"})),
        "sla_policies[4] (NEW): the same (state, market, source) as sla_policies[0]",
    ),
    "naive PTO date": (
        _broken(lambda d: d["reps"][0]["pto"][0].update(start="2026-12-01T00:00:00")),
        "pto[0], field 'start'",
    ),
    "two managers": (
        _broken(lambda d: d["reps"][0].update(role="manager")),
        "already has a manager",
    ),
    "warning above 100 %": (
        _broken(lambda d: d["thresholds"].update(warn=120)),
        "field 'warn_percent'",
    ),
    "unknown holiday country": (
        _broken(lambda d: d["markets"][0]["holidays"].update(country="ZZ")),
        "field 'holidays.country'",
    ),
    "unknown field": (
        _broken(lambda d: d["teams"][0].update(channel="C1")),
        "teams[0] (in-inside), field 'channel': unknown field",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_org_file_changes_nothing_and_names_the_entry_and_field(tmp_path, case):
    load_org(_write(tmp_path, MINIMAL, "good.yaml"))
    before = _snapshot()
    doc, expected = BAD_FILES[case]
    path = _write(tmp_path, doc, "bad.yaml")
    with pytest.raises(CommandError) as err:
        call_command("load_org", str(path))
    message = str(err.value)
    assert str(path) in message
    assert expected in message
    assert "nothing was changed" in message
    assert _snapshot() == before


@pytest.mark.django_db
def test_bad_file_on_an_empty_database_creates_nothing(tmp_path):
    doc = _broken(lambda d: d["sla_policies"][2].update(window="2 hours"))
    with pytest.raises(OrgFileError):
        load_org(_write(tmp_path, doc))
    assert not Market.objects.exists() and not Rep.objects.exists()
    assert not SlaPolicy.objects.exists()


@pytest.mark.django_db
def test_malformed_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "markets: [\n  - code: IN\n   name: x")
    with pytest.raises(OrgFileError) as err:
        load_org(path)
    assert str(path) in str(err.value) and "not valid YAML" in str(err.value)


@pytest.mark.django_db
def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("load_org", str(tmp_path / "missing.yaml"))


@pytest.mark.django_db
def test_pto_list_in_the_file_replaces_the_reps_time_off(tmp_path):
    load_org(_write(tmp_path, MINIMAL))
    doc = _broken(
        lambda d: d["reps"][0].update(
            pto=[
                {
                    "start": "2027-01-04T00:00:00+05:30",
                    "end": "2027-01-06T00:00:00+05:30",
                    "reason": "Pongal",
                }
            ]
        )
    )
    load_org(_write(tmp_path, doc))
    asha = Rep.objects.get(email="asha@example.com")
    assert [(t.start.date().isoformat(), t.reason) for t in asha.time_off.all()] == [
        ("2027-01-03", "Pongal")
    ]  # 00:00 +05:30 is the evening before in UTC


@pytest.mark.django_db
def test_export_command_writes_yaml_to_stdout(capsys):
    load_org(ORG_FILE)
    call_command("export_org")
    doc = yaml.safe_load(capsys.readouterr().out)
    assert {m["code"] for m in doc["markets"]} == {"IN", "US", "DE", "SG", "FR", "AE"}
