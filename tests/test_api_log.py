"""The read side of the API (SPEC §12): audit events filtered by lead, kind and period with
cursors stable under inserts, the notification outbox, reassignments and their revert with the
admin's authorisation; all scoped like the admin for team leads."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction

from audit import log
from audit.models import AuditEvent
from escalations.models import Notification, Reassignment
from escalations.reassign import reassign_lead
from escalations.sweep import run_sweep
from leadops.models import Lead
from tests.conftest import berlin
from tests.factories import make_lead

MONDAY_10 = berlin(2026, 3, 2, 10, 0)
EVENTS = "/api/v1/audit-events/"
NOTIFICATIONS = "/api/v1/notifications/"
REASSIGNMENTS = "/api/v1/reassignments/"


@pytest.fixture
def clock():
    with time_machine.travel(MONDAY_10, tick=False) as traveller:
        yield traveller


@pytest.fixture
def leads(org, policies, clock):
    return {
        "lena": make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena),
        "asha": make_lead(team=org.india_team, source=org.paid_social, owner=org.asha),
    }


def results(response) -> list[dict]:
    assert response.status_code == 200, response.json()
    return response.json()["results"]


# --- audit events -------------------------------------------------------------------------------


@pytest.fixture
def escalated(leads, clock):
    """The sweep warns and breaches both leads (at 10:50 and 11:00 Berlin)."""
    run_sweep(now=MONDAY_10 + timedelta(minutes=50))
    run_sweep(now=MONDAY_10 + timedelta(minutes=61))
    return leads


def test_audit_events_filter_by_lead_kind_and_period(api, callers, escalated):
    lena = escalated["lena"]
    by_lead = results(api.get(EVENTS, as_=callers.crm, lead=lena.pk))
    breaches = results(api.get(EVENTS, as_=callers.crm, kind="sla_breach"))
    period = results(
        api.get(
            EVENTS,
            as_=callers.crm,
            since=(MONDAY_10 + timedelta(minutes=55)).isoformat(),
            until=(MONDAY_10 + timedelta(hours=2)).isoformat(),
        )
    )

    assert {e["lead"] for e in by_lead} == {lena.pk}
    assert {e["kind"] for e in by_lead} >= {"sla_warning", "sla_breach"}
    assert sorted(e["lead"] for e in breaches) == sorted(lead.pk for lead in escalated.values())
    assert {e["kind"] for e in period} == {"sla_breach"}
    warning = next(e for e in by_lead if e["kind"] == "sla_warning")
    assert warning["policy_version"] == 1 and warning["window"] == "1h"
    assert warning["elapsed_seconds"] == 50 * 60 and warning["owner_name"] == "Lena Hoffmann"


def test_audit_pages_never_repeat_or_skip_an_event_while_events_are_written(api, callers, leads):
    lead = leads["lena"]

    def note(i, at):
        with transaction.atomic():
            log.record("progress_recorded", lead=lead, occurred_at=at, details={"i": i})

    base = MONDAY_10 - timedelta(days=1)
    for i in range(10):  # two share each instant: the id breaks the tie
        note(i, base + timedelta(minutes=i // 2))
    expected = list(
        AuditEvent.objects.filter(kind="progress_recorded")
        .order_by("-occurred_at", "-id")
        .values_list("id", flat=True)
    )
    seen, url, params = [], EVENTS, {"kind": "progress_recorded", "limit": 3}
    while url:
        response = api.get(url, as_=callers.crm, **params)
        seen += [e["id"] for e in results(response)]
        note(99, base + timedelta(minutes=1))  # among the rows still ahead: may show up
        note(100, MONDAY_10)  # newer than every page: never shows up
        url, params = response.json()["next"], {}

    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in set(expected)] == expected
    assert not AuditEvent.objects.filter(pk__in=seen, occurred_at=MONDAY_10).exists()


def test_team_lead_reads_only_their_teams_events(api, callers, escalated):
    events = results(api.get(EVENTS, as_=callers.jonas, limit=500))

    assert events and {e["team"] for e in events} == {escalated["lena"].team_id}


@pytest.mark.parametrize(
    "params",
    [
        {"lead": "abc"},
        {"lead": "0"},
        {"lead": str(2**64)},
        {"kind": "everything"},
        {"since": "2026-03-02"},
        {"until": "0001-01-01T00:00:00+14:00"},
        {"cursor": "eyJ4IjoxfQ"},
        {"cursor": "WyIyMDI2LTAzLTAyVDA5OjAwOjAwIiwxXQ"},  # a time without offset
    ],
)
def test_bad_audit_filters_are_400(api, callers, leads, params):
    response = api.get(EVENTS, as_=callers.crm, **params)

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == set(params)


# --- notifications --------------------------------------------------------------------------------


def test_notifications_list_filters_and_scope(api, callers, escalated):
    lena = escalated["lena"]
    everything = results(api.get(NOTIFICATIONS, as_=callers.ops))
    warnings = results(api.get(NOTIFICATIONS, as_=callers.ops, kind="warning", lead=lena.pk))
    jonas_sees = results(api.get(NOTIFICATIONS, as_=callers.jonas))

    assert len(everything) == Notification.objects.count() >= 4
    assert [(n["lead"], n["persona"], n["recipient"]) for n in warnings] == [
        (lena.pk, "owner", "lena@example.com")
    ]
    assert {n["team"] for n in jonas_sees} == {"de-berlin"}
    assert "destination" not in everything[0]  # a webhook URL is a credential
    assert results(api.get(NOTIFICATIONS, as_=callers.ops, status="failed")) == []


# --- reassignments and revert ---------------------------------------------------------------------


@pytest.fixture
def moved(org, leads, clock):
    return {
        "lena": reassign_lead(leads["lena"], org.felix, cause="manual", actor=None),
        "asha": reassign_lead(leads["asha"], org.rahul, cause="manual", actor=None),
    }


def test_reassignments_list_and_detail(api, callers, moved):
    listed = results(api.get(REASSIGNMENTS, as_=callers.crm))
    detail = api.get(f"{REASSIGNMENTS}{moved['lena'].pk}/", as_=callers.crm).json()

    assert [r["id"] for r in listed] == [moved["asha"].pk, moved["lena"].pk]
    assert (detail["from_rep"], detail["to_rep"], detail["cause"]) == (
        "lena@example.com",
        "felix@example.com",
        "manual",
    )
    assert detail["reverted"] is False and detail["reverted_at"] is None
    assert results(api.get(REASSIGNMENTS, as_=callers.crm, reverted="true")) == []
    assert len(results(api.get(REASSIGNMENTS, as_=callers.crm, reverted="false"))) == 2


def test_team_lead_reverts_a_reassignment_of_their_team(api, callers, org, moved):
    url = f"{REASSIGNMENTS}{moved['lena'].pk}/revert/"
    response = api.post(url, {"reason": "Lena was only at lunch"}, as_=callers.jonas)
    again = api.post(url, {"reason": "twice"}, as_=callers.jonas)

    assert response.status_code == 200, response.json()
    assert response.json()["reverted"] is True
    assert response.json()["revert_reason"] == "Lena was only at lunch"
    assert Lead.objects.get(pk=moved["lena"].lead_id).owner == org.lena
    assert AuditEvent.objects.filter(kind="reassignment_reverted").count() == 1
    assert again.status_code == 409 and "Already reverted" in again.json()["error"]["message"]


def test_revert_is_refused_outside_the_admins_authorisation(api, callers, moved):
    other_team = api.post(
        f"{REASSIGNMENTS}{moved['asha'].pk}/revert/", {"reason": "x"}, as_=callers.jonas
    )
    integration = api.post(
        f"{REASSIGNMENTS}{moved['lena'].pk}/revert/", {"reason": "x"}, as_=callers.crm
    )
    no_reason = api.post(f"{REASSIGNMENTS}{moved['lena'].pk}/revert/", {}, as_=callers.jonas)

    assert other_team.status_code == 404  # not among Jonas's team's rows
    assert integration.status_code == 403  # integrations feed leads, they do not revert
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]["fields"]
    assert not Reassignment.objects.filter(reverted_at__isnull=False).exists()


def test_an_ops_manager_reverts_any_team_and_the_domain_refuses_what_moved_on(
    api, callers, org, moved
):
    reassign_lead(Lead.objects.get(pk=moved["asha"].lead_id), org.asha, cause="manual", actor=None)
    refused = api.post(
        f"{REASSIGNMENTS}{moved['asha'].pk}/revert/", {"reason": "back"}, as_=callers.ops
    )
    done = api.post(f"{REASSIGNMENTS}{moved['lena'].pk}/revert/", {"reason": "ok"}, as_=callers.ops)

    assert refused.status_code == 409 and "moved on" in refused.json()["error"]["message"]
    assert done.status_code == 200
