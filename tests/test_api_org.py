"""The org file over the API (SPEC §12/§13, policy as code): export as JSON, load all or
nothing, a dry run that writes nothing, ops managers only."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from escalations.models import SlaPolicy
from escalations.orgfile import export_document
from teams.models import Market, Rep, Team

ORG = "/api/v1/org/"

SINGAPORE = {
    "markets": [
        {
            "code": "SG",
            "name": "Singapore",
            "timezone": "Asia/Singapore",
            "holidays": {"country": "SG"},
            "hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
        }
    ],
    "teams": [{"slug": "sg-inside", "name": "Singapore inside", "market": "SG"}],
    "reps": [
        {"email": "mei@example.com", "name": "Mei Tan", "team": "sg-inside", "capacity": 20},
        {"email": "wei@example.com", "name": "Wei Lim", "team": "sg-inside", "role": "manager"},
    ],
    "sla_policies": [{"state": "NEW", "market": "SG", "window": "2h", "clock": "business"}],
}


def counts() -> tuple:
    return (
        Market.objects.count(),
        Team.objects.count(),
        Rep.objects.count(),
        SlaPolicy.objects.count(),
        AuditEvent.objects.count(),
    )


def test_ops_manager_exports_the_org_file_as_json(api, callers, org, policies):
    response = api.get(ORG, as_=callers.ops)

    assert response.status_code == 200
    assert response.json() == export_document()
    assert {m["code"] for m in response.json()["markets"]} == {"DE", "IN"}


def test_only_ops_managers_read_or_load_the_org(api, callers, org):
    for name in ("crm", "jonas", "nobody"):
        caller = getattr(callers, name)
        assert api.get(ORG, as_=caller).status_code == 403, name
        assert api.post(ORG, SINGAPORE, as_=caller).status_code == 403, name
    assert api.get(ORG).status_code == 401


def test_dry_run_reports_the_changes_and_writes_nothing(api, callers, org, policies):
    before = counts()
    response = api.post(f"{ORG}?dry_run=1", SINGAPORE, as_=callers.ops)

    assert response.status_code == 200, response.json()
    report = response.json()
    assert report["dry_run"] is True
    assert report["created"] == {"markets": 1, "teams": 1, "reps": 2, "sla_policies": 1}
    assert report["summary"].startswith("dry run, nothing written")
    assert counts() == before


def test_load_creates_the_org_in_one_go(api, callers, org, policies):
    response = api.post(ORG, SINGAPORE, as_=callers.ops)

    assert response.status_code == 200, response.json()
    assert response.json()["dry_run"] is False
    assert Team.objects.get(slug="sg-inside").market.code == "SG"
    assert Rep.objects.get(email="wei@example.com").role == "manager"
    assert SlaPolicy.objects.get(market__code="SG").window == "2h"
    again = api.post(ORG, SINGAPORE, as_=callers.ops).json()
    assert again["created"] == {} and again["unchanged"]["markets"] == 1


def test_a_bad_document_changes_nothing_and_lists_every_problem(api, callers, org, policies):
    bad = {
        **SINGAPORE,
        "sla_policies": [
            {"state": "NEW", "market": "SG", "window": "2 weeks"},
            {"state": "NEW", "market": "XX", "window": "1h"},
        ],
    }
    before = counts()
    response = api.post(ORG, bad, as_=callers.ops)

    assert response.status_code == 400
    problems = response.json()["error"]["fields"]["document"]
    assert len(problems) == 2
    assert "window" in problems[0] and "no market 'XX'" in problems[1]
    assert counts() == before


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"markets": [{"code": ["SG"]}]}, "markets.0.code"),
        ({"teams": [{"slug": "x", "market": {"code": "DE"}}]}, "teams.0.market"),
        ({"reps": [{"email": "a@b.c", "team": "de-berlin", "capacity": "9"}]}, "reps.0.capacity"),
        ({"reps": [{"email": "a@b.c", "team": "de-berlin", "active": "yes"}]}, "reps.0.active"),
        ({"thresholds": {"warn": 80.5}}, "thresholds.warn"),
        ({"markets": {"code": "SG"}}, "markets"),
        ({"planets": []}, "document"),
        ({"sla_policies": [{"state": "NEW", "window": "1h", "colour": "red"}]}, "sla_policies.0"),
    ],
)
def test_wrong_types_are_400_naming_the_place(api, callers, org, document, field):
    before = counts()
    response = api.post(ORG, document, as_=callers.ops)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert counts() == before


def test_a_document_must_be_an_object(api, callers, org):
    response = api.post(ORG, [SINGAPORE], as_=callers.ops)

    assert response.status_code == 400
    assert "document" in response.json()["error"]["fields"]


def test_bad_dry_run_flag_is_400(api, callers, org):
    response = api.post(f"{ORG}?dry_run=perhaps", SINGAPORE, as_=callers.ops)

    assert response.status_code == 400
    assert "dry_run" in response.json()["error"]["fields"]
    assert not Market.objects.filter(code="SG").exists()


def test_a_date_that_does_not_exist_is_a_400_not_a_crash(api, callers, org):
    rep = {"email": "mei@example.com", "name": "Mei Tan", "team": "de-berlin"}
    pto = [{"start": "2026-02-30T00:00:00+01:00", "end": "2026-03-02T00:00:00+01:00"}]

    response = api.post(ORG, {"reps": [{**rep, "pto": pto}]}, as_=callers.ops)

    assert response.status_code == 400
    assert "is not a date-time" in response.json()["error"]["fields"]["document"][0]
    assert not Rep.objects.filter(email="mei@example.com").exists()
