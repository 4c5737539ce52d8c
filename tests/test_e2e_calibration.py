"""The calibration page in a real Chromium: the charts render (server-side SVG, nothing loaded
from outside), a team lead sees only his team, and "Preview impact" on the policy form shows
the replay of the unsaved values. Screenshots go to artefacts/ (git-ignored)."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from audit.calibration import Period  # noqa: E402
from escalations.models import SlaPolicy  # noqa: E402
from escalations.orgfile import load_org  # noqa: E402
from leadops.demo import ORG_FILE  # noqa: E402
from leadops.demo.history import build_history  # noqa: E402
from teams.models import Rep  # noqa: E402
from tests.factories import UserFactory, ops_manager_and_team_lead  # noqa: E402
from tests.test_calibration_admin import history  # noqa: E402, F401 (a fixture)
from tests.test_e2e_admin import _groups, log_in  # noqa: E402

pytestmark = pytest.mark.e2e
THREE_WEEKS = Period(
    datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 22, tzinfo=UTC), "three weeks"
)
ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts"


@pytest.fixture
def personas(org, policies, live_server):
    _groups()  # the migrations' groups, back after an earlier test's flush
    return ops_manager_and_team_lead(org)


@pytest.fixture
def demo_history(live_server):
    """The demo org and three weeks of its history (18 leads worked by the real verbs)."""
    groups = _groups()
    load_org(ORG_FILE)
    build_history(period=THREE_WEEKS, leads_per_team=3)
    olga = UserFactory(username="olga")
    olga.groups.add(groups["Ops managers"])
    jonas = UserFactory(username="jonas")
    jonas.groups.add(groups["Team leads"])
    Rep.objects.filter(email="jonas@demo.leadops").update(user=jonas)


@pytest.mark.usefixtures("demo_history")
def test_ops_manager_sees_the_calibration_charts_and_a_team_lead_his_team(page, live_server):
    ARTEFACTS.mkdir(exist_ok=True)
    outside = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_server.url) else None
        ),
    )
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/")
    page.click("p.calibration-link a")
    expect(page.locator("#calibration-period")).to_be_visible()
    page.select_option("#id_quarter", "2026Q3")  # the demo history's quarter
    page.click("#calibration-period input[type=submit]")
    charts = page.locator("#calibration-charts")
    for chart in ("#chart-heat-map", "#chart-progress", "#chart-teams", "#chart-notifications"):
        expect(charts.locator(f"{chart} svg")).to_be_visible()
    expect(charts.locator("#chart-heat-map")).to_contain_text("DE")
    expect(charts.locator("#chart-heat-map")).to_contain_text("IN")
    expect(page.locator("table[data-table=teams]")).to_contain_text("in-inside")
    expect(page.locator("table[data-table=notifications]")).to_contain_text("owner")
    charts.screenshot(path=str(ARTEFACTS / "calibration-charts.png"))
    page.screenshot(path=str(ARTEFACTS / "calibration-page-ops.png"), full_page=True)
    assert outside == []

    page.context.clear_cookies()
    log_in(page, live_server, "jonas")
    page.goto(f"{live_server.url}/admin/audit/auditevent/calibration/?quarter=2026Q3")
    expect(page.locator("table[data-table=teams]")).to_contain_text("de-berlin")
    expect(page.locator("#content")).not_to_contain_text("in-inside")
    expect(page.locator("#chart-heat-map")).not_to_contain_text("IN")
    page.screenshot(path=str(ARTEFACTS / "calibration-page-team-lead.png"), full_page=True)


@pytest.mark.usefixtures("history")
def test_preview_impact_replays_the_unsaved_window(page, live_server, personas, policies):
    ARTEFACTS.mkdir(exist_ok=True)
    policy = policies["NEW/inbound_web"]
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/escalations/slapolicy/{policy.pk}/change/")
    page.fill("#id_window", "1h")
    page.select_option("#id__whatif_quarter", "2026Q4")
    page.click("input[name=_preview]")
    result = page.locator("#whatif-result")
    expect(result).to_contain_text("Nothing has been saved")
    expect(page.locator('tr[data-key="DE/inbound_web/NEW"]')).to_be_visible()
    expect(page.locator("#whatif-changed")).to_contain_text("on time → breached")
    page.screenshot(path=str(ARTEFACTS / "policy-preview-impact.png"), full_page=True)
    assert SlaPolicy.objects.get(pk=policy.pk).window == "2h"
