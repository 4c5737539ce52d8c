"""The leads API (SPEC §12): intake idempotent by external_id, the list with its filters and
cursor, one lead with its SLA from `explain`, the lifecycle verbs, and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.fields import DateTimeField

from audit.models import AuditEvent
from escalations.api.serializers import (
    LeadDetailSerializer,
    LeadSerializer,
    SlaSerializer,
    _instant,
)
from escalations.explain import explain
from escalations.models import SlaTimer
from leadops import lifecycle
from leadops.models import Activity, Lead
from tests.conftest import berlin
from tests.factories import make_lead

MONDAY_10 = berlin(2026, 3, 2, 10, 0)
LEADS = "/api/v1/leads/"


@pytest.fixture
def clock():
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


def new_lead(**overrides) -> dict:
    return {
        "name": "Aisha Al-Mansoori",
        "company": "Emirates Group",
        "email": "aisha@example.com",
        "market": "DE",
        "source": "paid_social",
        "team": "de-berlin",
        "owner": "lena@example.com",
        **overrides,
    }


def lead_url(lead, action: str = "") -> str:
    return f"{LEADS}{lead.pk}/" + (f"{action}/" if action else "")


# --- intake -----------------------------------------------------------------------------------


def test_crm_creates_a_lead_and_its_sla_timer_starts(api, callers, org, policies, clock):
    response = api.post(LEADS, new_lead(external_id="crm-1"), as_=callers.crm)

    assert response.status_code == 201, response.json()
    body = response.json()
    lead = Lead.objects.get(external_id="crm-1")
    assert response["Location"] == f"/api/v1/leads/{lead.pk}/"
    assert body["id"] == lead.pk and body["state"] == "NEW" and body["owner"] == "lena@example.com"
    assert (body["market"], body["source"], body["team"]) == ("DE", "paid_social", "de-berlin")
    timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)
    assert body["sla"]["status"] == "on_track"
    assert body["sla"]["policy_id"] == policies["NEW"].pk and body["sla"]["window"] == "1h"
    assert body["sla"]["due_at"] == "2026-03-02T10:00:00Z"  # 1 h after 10:00 in Berlin
    assert timer.due_at == MONDAY_10 + timedelta(hours=1)
    assert body["sla"]["business_seconds_left"] == 3600
    assert lead.history.first().history_user == callers.crm.user


def test_a_lead_without_owner_is_routed_to_an_available_rep(api, callers, org, policies, clock):
    response = api.post(LEADS, new_lead(owner=None), as_=callers.crm)

    assert response.status_code == 201
    assert response.json()["owner"] in ("lena@example.com", "felix@example.com")
    assert AuditEvent.objects.filter(kind="lead_assigned").count() == 1


def test_repeating_an_external_id_returns_the_first_lead_with_200(api, callers, org, clock):
    first = api.post(LEADS, new_lead(external_id="crm-7"), as_=callers.crm)
    again = api.post(LEADS, new_lead(external_id="crm-7", name="Changed"), as_=callers.crm)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["name"] == "Aisha Al-Mansoori"
    assert Lead.objects.count() == 1


def test_unknown_codes_are_400_with_a_message_per_field(api, callers, org, clock):
    response = api.post(
        LEADS,
        new_lead(market="XX", source="nope", team="none", owner="who@example.com"),
        as_=callers.crm,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert set(error["fields"]) == {"market", "source", "team", "owner"}
    assert "No market with code 'XX'" in error["fields"]["market"][0]
    assert not Lead.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": 12}, "name"),
        ({"name": ["Aisha"]}, "name"),
        ({"name": ""}, "name"),
        ({"name": "A" * 201}, "name"),
        ({"name": "Aisha\x07"}, "name"),
        ({"name": "Aisha\nSmith"}, "name"),
        ({"owner": {"email": "lena@example.com"}}, "owner"),
        ({"email": "not-an-email"}, "email"),
        ({"external_id": True}, "external_id"),
        ({"market": None}, "market"),
    ],
)
def test_wrong_types_and_shapes_are_400_naming_the_field(api, callers, org, overrides, field):
    response = api.post(LEADS, new_lead(**overrides), as_=callers.crm)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Lead.objects.exists()


def test_the_lifecycle_refuses_a_team_of_another_market_as_a_400(api, callers, org, clock):
    response = api.post(LEADS, new_lead(market="IN"), as_=callers.crm)

    assert response.status_code == 400
    assert "belongs to market DE" in response.json()["error"]["fields"]["team"][0]
    assert not Lead.objects.exists()


def test_the_lifecycle_refuses_an_owner_of_another_team(api, callers, org, clock):
    response = api.post(LEADS, new_lead(owner="asha@example.com"), as_=callers.crm)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["owner"]


def test_team_leads_read_only_and_others_are_refused(api, callers, org, clock):
    refused = {
        name: api.post(LEADS, new_lead(), as_=getattr(callers, name)).status_code
        for name in ("jonas", "vikram", "nobody")
    }
    anonymous = api.post(LEADS, new_lead())

    assert refused == {"jonas": 403, "vikram": 403, "nobody": 403}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"] == "Token"
    assert not Lead.objects.exists()


def test_ops_managers_write_too(api, callers, org, clock):
    assert api.post(LEADS, new_lead(), as_=callers.ops).status_code == 201


# --- list and detail ----------------------------------------------------------------------------


@pytest.fixture
def leads(org, policies, clock):
    """Berlin: Lena's NEW lead, Felix's CONTACTED lead; Bangalore: Asha's NEW lead."""
    lena = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="L1")
    felix = make_lead(
        team=org.berlin_team, source=org.inbound_web, owner=org.felix, name="F1", external_id="x9"
    )
    with time_machine.travel(MONDAY_10 + timedelta(minutes=5), tick=False):
        felix.refresh_from_db()
        lifecycle.record_activity(felix, "call", actor=org.felix)
    asha = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha, name="A1")
    return {"lena": lena, "felix": felix, "asha": asha}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_list_is_newest_first_with_the_sla_status(api, callers, leads, clock):
    response = api.get(LEADS, as_=callers.crm)

    assert ids(response) == [leads["asha"].pk, leads["felix"].pk, leads["lena"].pk]
    rows = {row["id"]: row for row in response.json()["results"]}
    assert rows[leads["lena"].pk]["sla_status"] == "on_track"
    assert response.json()["next"] is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "NEW"}, ["asha", "lena"]),
        ({"state": "CONTACTED"}, ["felix"]),
        ({"market": "IN"}, ["asha"]),
        ({"team": "de-berlin"}, ["felix", "lena"]),
        ({"owner": "lena@example.com"}, ["lena"]),
        ({"external_id": "x9"}, ["felix"]),
        ({"market": "DE", "state": "NEW"}, ["lena"]),
    ],
)
def test_list_filters(api, callers, leads, params, expected):
    assert ids(api.get(LEADS, as_=callers.crm, **params)) == [leads[n].pk for n in expected]


def test_list_filters_by_sla_status_and_updated_since(api, callers, leads, clock):
    SlaTimer.objects.filter(lead=leads["asha"], completed_at__isnull=True).update(stage="breached")

    breached = ids(api.get(LEADS, as_=callers.crm, sla_status="breached"))
    since = ids(
        api.get(
            LEADS, as_=callers.crm, updated_since=(MONDAY_10 + timedelta(minutes=1)).isoformat()
        )
    )

    assert breached == [leads["asha"].pk]
    assert since == [leads["felix"].pk]  # the call moved it on at 10:05


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "OPEN"}, "state"),
        ({"market": "XX"}, "market"),
        ({"sla_status": "late"}, "sla_status"),
        ({"updated_since": "2026-03-02 10:00"}, "updated_since"),
        ({"updated_since": "yesterday"}, "updated_since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),  # ["x"]: not an id
    ],
)
def test_bad_filters_are_400_naming_the_parameter(api, callers, leads, params, field):
    response = api.get(LEADS, as_=callers.crm, **params)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_pages_follow_the_cursor_and_new_leads_never_shift_them(api, callers, org, policies, clock):
    made = [
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
        for i in range(7)
    ]
    seen, url, params = [], LEADS, {"limit": 3}
    while url:
        response = api.get(url, as_=callers.crm, **params)
        seen += ids(response)
        # A lead arriving while the client pages: it belongs before page 1, never in a later one.
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="late")
        url, params = response.json()["next"], {}

    assert seen == [lead.pk for lead in reversed(made)]


def test_list_costs_the_same_queries_for_3_or_30_leads(api, callers, org, policies, clock):
    def count(n: int) -> int:
        Lead.objects.all().delete()
        for i in range(n):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
        with CaptureQueriesContext(connection) as ctx:
            assert len(ids(api.get(LEADS, as_=callers.crm, state="NEW"))) == n
        return len(ctx.captured_queries)

    # Cold: the reference stamp, token and user, the user's and the groups' permissions, the
    # scope (groups), the page of leads, their open timers. Warm (teams.reference): the stamp,
    # the page, its open timers.
    assert count(3) == 7
    assert count(3) == count(30) == 3


def test_team_lead_sees_only_their_teams_leads(api, callers, leads):
    listed = ids(api.get(LEADS, as_=callers.jonas))
    other = api.get(lead_url(leads["asha"]), as_=callers.jonas)

    assert sorted(listed) == sorted([leads["lena"].pk, leads["felix"].pk])
    assert other.status_code == 404 and other.json()["error"]["code"] == "not_found"
    assert api.get(lead_url(leads["lena"]), as_=callers.jonas).status_code == 200
    assert ids(api.get(LEADS, as_=callers.vikram)) == [leads["asha"].pk]


def test_a_user_without_view_permission_reads_nothing(api, callers, leads):
    assert api.get(LEADS, as_=callers.nobody).status_code == 403


def test_lead_detail_explains_the_sla_like_the_admin(api, callers, leads, clock):
    clock.move_to(MONDAY_10 + timedelta(minutes=50))
    response = api.get(lead_url(leads["lena"]), as_=callers.crm)

    sla = response.json()["sla"]
    facts = explain(leads["lena"], now=timezone.now())
    assert sla["business_seconds_elapsed"] == 50 * 60
    assert sla["business_seconds_left"] == int(facts.remaining.total_seconds()) == 10 * 60
    assert sla["phrase"] == facts.status.phrase == "SLA breach in 10 minutes"
    assert sla["warn_at"] == "2026-03-02T09:48:00Z"  # 80 % of 1 h after 09:00 UTC
    assert facts.timer.warn_at == MONDAY_10 + timedelta(minutes=48)
    assert (sla["clock"], sla["stage"], sla["paused"], sla["stale"]) == (
        "business",
        "pending",
        False,
        False,
    )


def test_a_closed_lead_has_no_sla(api, callers, leads, clock):
    api.post(lead_url(leads["lena"], "transition"), {"to_state": "LOST"}, as_=callers.crm)

    sla = api.get(lead_url(leads["lena"]), as_=callers.crm).json()["sla"]

    assert (sla["status"], sla["label"], sla["due_at"]) == ("no_sla", "closed", None)


def test_unknown_and_oversized_ids_are_404(api, callers, leads):
    for url in (f"{LEADS}999999/", f"{LEADS}{'9' * 30}/", f"{LEADS}-1/", f"{LEADS}abc/"):
        response = api.get(url, as_=callers.crm)
        assert response.status_code == 404, url
        assert response.json()["error"]["code"] == "not_found"


# --- activities, transitions, holds ---------------------------------------------------------------


def test_the_owners_call_moves_a_new_lead_on(api, callers, leads, clock):
    clock.move_to(MONDAY_10 + timedelta(minutes=20))
    response = api.post(
        lead_url(leads["lena"], "activities"),
        {"kind": "call", "actor": "lena@example.com", "notes": "Left a voicemail\nwill retry"},
        as_=callers.crm,
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["kind"], body["actor"], body["counted_as_progress"]) == (
        "call",
        "lena@example.com",
        True,
    )
    assert body["lead_state"] == "CONTACTED"
    activity = Activity.objects.get(pk=body["id"])
    assert activity.actor == leads["lena"].owner and activity.actor_user == callers.crm.user
    assert SlaTimer.objects.get(lead=leads["lena"], state="NEW").outcome == "met"


def test_a_call_by_someone_else_is_recorded_but_is_not_progress(api, callers, org, leads, clock):
    response = api.post(
        lead_url(leads["lena"], "activities"),
        {"kind": "call", "actor": "felix@example.com"},
        as_=callers.crm,
    )

    assert response.status_code == 201
    assert response.json()["counted_as_progress"] is False
    assert response.json()["lead_state"] == "NEW"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kind": "fax"}, "kind"),
        ({"kind": "call", "occurred_at": "2026-03-02T11:00:00+01:00"}, "occurred_at"),  # future
        ({"kind": "call", "occurred_at": "2026-03-02T09:59:00+01:00"}, "occurred_at"),  # before
        ({"kind": "call", "occurred_at": "2026-03-02T10:00:00"}, "occurred_at"),  # no offset
        ({"kind": "call", "actor": "ghost@example.com"}, "actor"),
        ({"kind": "disqualify"}, "reason"),
        ({"kind": "note", "reason": "x" * 301}, "reason"),
    ],
)
def test_bad_activities_are_400_and_record_nothing(api, callers, leads, clock, payload, field):
    response = api.post(lead_url(leads["lena"], "activities"), payload, as_=callers.crm)

    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["fields"]
    assert not Activity.objects.filter(lead=leads["lena"]).exists()


def test_activity_at_an_explicit_past_instant_is_kept(api, callers, leads, clock):
    clock.move_to(MONDAY_10 + timedelta(minutes=30))
    response = api.post(
        lead_url(leads["lena"], "activities"),
        {"kind": "email", "actor": "lena@example.com", "occurred_at": "2026-03-02T09:10:00Z"},
        as_=callers.crm,
    )

    assert response.status_code == 201
    assert response.json()["occurred_at"] == "2026-03-02T09:10:00Z"


def test_transition_moves_the_lead_and_an_illegal_one_is_409(api, callers, leads, clock):
    ok = api.post(
        lead_url(leads["felix"], "transition"), {"to_state": "QUALIFIED"}, as_=callers.crm
    )
    refused = api.post(lead_url(leads["felix"], "transition"), {"to_state": "WON"}, as_=callers.crm)

    assert ok.status_code == 200 and ok.json()["state"] == "QUALIFIED"
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert "cannot move to WON" in refused.json()["error"]["message"]
    leads["felix"].refresh_from_db()
    assert leads["felix"].state == "QUALIFIED"


def test_unqualified_needs_a_reason(api, callers, leads):
    response = api.post(
        lead_url(leads["lena"], "transition"), {"to_state": "UNQUALIFIED"}, as_=callers.crm
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["reason"]


def test_hold_pauses_and_resume_restarts_the_clock(api, callers, leads, clock):
    held = api.post(
        lead_url(leads["lena"], "hold"),
        {"reason": "Customer travelling", "resume_at": "2026-03-04T09:00:00+01:00"},
        as_=callers.crm,
    )
    again = api.post(lead_url(leads["lena"], "hold"), {"reason": "Again"}, as_=callers.crm)
    resumed = api.post(lead_url(leads["lena"], "resume"), {}, as_=callers.crm)
    twice = api.post(lead_url(leads["lena"], "resume"), {}, as_=callers.crm)

    assert held.status_code == 200
    assert held.json()["on_hold"] is True and held.json()["sla"]["status"] == "paused"
    assert held.json()["hold_until"] == "2026-03-04T08:00:00Z"
    assert again.status_code == 409
    assert resumed.status_code == 200 and resumed.json()["sla"]["status"] == "on_track"
    assert twice.status_code == 409 and "not on hold" in twice.json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "reason"),
        ({"reason": "Waiting", "resume_at": "2026-03-01T09:00:00Z"}, "resume_at"),  # past
        ({"reason": "Waiting", "resume_at": 1772442000}, "resume_at"),
    ],
)
def test_bad_holds_are_400_and_change_nothing(api, callers, leads, clock, payload, field):
    response = api.post(lead_url(leads["lena"], "hold"), payload, as_=callers.crm)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    leads["lena"].refresh_from_db()
    assert not leads["lena"].on_hold


def test_lead_actions_need_the_feed_permission_and_scope(api, callers, leads, clock):
    url = lead_url(leads["asha"], "transition")

    assert api.post(url, {"to_state": "LOST"}, as_=callers.vikram).status_code == 403
    assert api.post(url, {"to_state": "LOST"}).status_code == 401
    assert (
        api.post(f"{LEADS}999999/transition/", {"to_state": "LOST"}, as_=callers.crm).status_code
        == 404
    )
    leads["asha"].refresh_from_db()
    assert leads["asha"].state == "NEW"


def test_the_written_out_lead_shape_matches_the_declared_fields(api, callers, leads):
    row = api.get(LEADS, as_=callers.crm).json()["results"][0]
    one = api.get(lead_url(leads["lena"]), as_=callers.crm).json()

    assert list(row) == list(LeadSerializer().fields)
    assert list(one) == list(LeadDetailSerializer().fields)
    assert list(one["sla"]) == list(SlaSerializer().fields)


@given(
    moment=st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from([UTC, ZoneInfo("Asia/Kolkata"), ZoneInfo("America/New_York")]),
    )
)
def test_instants_are_written_as_drf_writes_them(moment):
    """The list writes its date-times itself (400 a page); they must read as DRF's do."""
    assert _instant(moment) == DateTimeField().to_representation(moment)
