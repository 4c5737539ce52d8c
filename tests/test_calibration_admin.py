"""The admin's calibration page, its CSV downloads and the policy form's "Preview impact": for an
ops manager (every team) and a team lead (his team only)."""

from __future__ import annotations

import csv
import io

import pytest
import time_machine
from django.urls import reverse

from escalations.models import SlaPolicy
from escalations.sweep import run_sweep
from leadops import lifecycle
from tests.conftest import berlin, kolkata
from tests.factories import (
    UserFactory,
    make_lead,
    ops_manager_and_team_lead,
)

PAGE = "admin:audit_auditevent_calibration"


def _at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def people(org):
    return ops_manager_and_team_lead(org)


@pytest.fixture
def history(org, policies):
    """Berlin, inbound web (2 h): calls after 40 and 90 min, and one after 110 min (warned).
    Bangalore, paid social (1 h): a call after 2 h (breached, met late)."""
    # Bangalore first (05:30 UTC): warned and breached by the 12:10 sweep, met late at 13:00.
    with _at(kolkata(2026, 12, 2, 11, 0)):
        india = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha, name="I")
    run_sweep(now=kolkata(2026, 12, 2, 12, 10))
    with _at(kolkata(2026, 12, 2, 13, 0)):
        lifecycle.record_activity(india, "call", actor=org.asha)
    with _at(berlin(2026, 12, 2, 10, 0)):
        quick = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena, name="Q")
        ninety = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.felix, name="N")
        late = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena, name="L")
    with _at(berlin(2026, 12, 2, 10, 40)):
        lifecycle.record_activity(quick, "call", actor=org.lena)
    with _at(berlin(2026, 12, 2, 11, 30)):
        lifecycle.record_activity(ninety, "call", actor=org.felix)
    run_sweep(now=berlin(2026, 12, 2, 11, 36))
    with _at(berlin(2026, 12, 2, 11, 50)):
        lifecycle.record_activity(late, "call", actor=org.lena)
    return {"quick": quick, "ninety": ninety, "late": late, "india": india}


def _page(client, user, **params):
    client.force_login(user)
    return client.get(reverse(PAGE), {"quarter": "2026Q4", **params})


def test_ops_manager_sees_every_team_with_charts_and_tables(client, people, history):
    response = _page(client, people["olga"])
    assert response.status_code == 200
    body = response.content.decode()
    for chart in ("chart-heat-map", "chart-progress", "chart-teams", "chart-notifications"):
        assert f'id="{chart}"><svg' in body
    assert "<script" not in body.split('id="calibration-charts"')[1].split("</div>")[0]
    assert "Breach rate by market × source" in body
    assert "de-berlin" in body and "in-inside" in body


def test_csv_download_of_a_table(client, people, history):
    response = _page(client, people["olga"], format="csv", table="by_source")
    assert response["Content-Type"].startswith("text/csv")
    assert "calibration-2026Q4-by_source.csv" in response["Content-Disposition"]
    rows = {(r["market"], r["source"]): r for r in csv.DictReader(io.StringIO(response.text))}
    assert rows[("IN", "paid_social")]["breached"] == "1"
    assert rows[("DE", "inbound_web")]["timers"] == "3"


def test_team_lead_sees_only_his_team_on_the_page_and_in_the_csv(client, people, history):
    body = _page(client, people["jonas"]).content.decode()
    assert "de-berlin" in body and "in-inside" not in body and "India" not in body
    response = _page(client, people["jonas"], format="csv", table="by_source")
    assert {r["market"] for r in csv.DictReader(io.StringIO(response.text))} == {"DE"}
    # Asking for another market does not widen the scope.
    response = _page(client, people["jonas"], market="IN", format="csv", table="by_source")
    assert {r["market"] for r in csv.DictReader(io.StringIO(response.text))} == {"DE"}


def test_a_user_without_the_audit_log_gets_no_calibration(client, org):
    clerk = UserFactory(username="clerk")
    client.force_login(clerk)
    assert client.get(reverse(PAGE)).status_code == 403


def test_the_admin_index_links_to_calibration(client, people):
    client.force_login(people["olga"])
    assert reverse(PAGE) in client.get(reverse("admin:index")).content.decode()


def test_a_finding_links_to_its_rows(client, people, history, settings):
    settings.CALIBRATION_MIN_TIMERS = 1
    body = _page(client, people["olga"]).content.decode()
    assert "India · Paid social: 100 % of timers breached" in body
    response = client.get(
        reverse("admin:audit_auditevent_calibration_rows"),
        {"quarter": "2026Q4", "kind": "sla_breach", "market": "IN", "source": "paid_social"},
    )
    assert response.status_code == 200
    assert response.content.decode().count('<tr><td><a href="/admin/audit/auditevent/') == 1


def _preview(client, user, data):
    """Posted just after the history (the open timers have run only that long)."""
    client.force_login(user)
    with _at(berlin(2026, 12, 2, 12, 0)):
        return client.post(reverse("admin:escalations_slapolicy_preview"), data)


def test_preview_replays_the_unsaved_form_values_for_an_ops_manager(
    client, people, history, policies, org
):
    policy = policies["NEW/inbound_web"]
    client.force_login(people["olga"])
    form_page = client.get(reverse("admin:escalations_slapolicy_change", args=[policy.pk]))
    assert 'value="Preview impact"' in form_page.content.decode()
    response = _preview(
        client,
        people["olga"],
        {
            "state": "NEW",
            "market": "",
            "source": org.inbound_web.pk,
            "window": "1h",
            "clock": "business",
            "active": "on",
            "change_reason": "",
            "_whatif_policy": policy.pk,
            "_whatif_quarter": "2026Q4",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Nothing has been saved" in body
    assert 'data-key="DE/inbound_web/NEW"' in body
    assert "N</a> (DE · inbound_web · NEW): on time → breached" in body
    policy.refresh_from_db()
    assert (policy.window, policy.version) == ("2h", 1)


def test_preview_shows_the_form_errors_instead_of_a_replay(client, people, policies, org):
    response = _preview(
        client,
        people["olga"],
        {"state": "NEW", "source": org.inbound_web.pk, "window": "soon", "clock": "business"},
    )
    assert "is not a window" in response.content.decode()


def test_team_lead_previews_another_window_on_his_team_only(client, people, history, policies, org):
    policy = policies["NEW"]  # the default NEW policy: India paid social uses it (1 h)
    client.force_login(people["jonas"])
    page = client.get(reverse("admin:escalations_slapolicy_change", args=[policy.pk]))
    assert 'id="whatif-try"' in page.content.decode()
    response = _preview(
        client,
        people["jonas"],
        {
            "_whatif_partial": "1",
            "_whatif_policy": policy.pk,
            "window": "4h",
            "clock": "business",
            "_whatif_quarter": "2026Q4",
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "in your teams" in body
    assert "IN · paid_social" not in body  # the breach that 4 h would avoid is India's
    assert SlaPolicy.objects.get(pk=policy.pk).window == "1h"
    # The ops manager sees it.
    body = _preview(
        client,
        people["olga"],
        {
            "_whatif_partial": "1",
            "_whatif_policy": policy.pk,
            "window": "4h",
            "clock": "business",
            "_whatif_quarter": "2026Q4",
        },
    ).content.decode()
    assert "I</a> (IN · paid_social · NEW): breached → on time" in body
