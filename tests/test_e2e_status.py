"""The admin index's status block in a real Chromium, for an ops manager (every team) and a team
lead (their team only); screenshots go to artefacts/e2e/ (git-ignored)."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import time_machine  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from escalations.sweep import run_sweep  # noqa: E402
from tests.conftest import berlin  # noqa: E402
from tests.factories import make_lead  # noqa: E402
from tests.test_e2e_admin import browser_type_launch_args, log_in, personas  # noqa: E402, F401

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("personas")]

ARTEFACTS = Path(__file__).resolve().parent.parent / "artefacts" / "e2e"


@pytest.fixture
def swept(org, policies):
    """A Berlin lead and a Bangalore lead from a past Monday, long breached; the sweep has just
    run (now), so the status is fresh."""
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas")
        make_lead(team=org.india_team, source=org.paid_social, owner=org.asha, name="Ravi")
    return run_sweep()


def _shoot(page, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_ops_manager_sees_the_status_of_every_team_on_the_index(page, live_server, swept):
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/")
    block = page.locator("#ops-status")
    expect(block).to_be_visible()
    expect(block.locator("h2")).to_have_text("Escalation status")
    expect(page.locator("#ops-status-sweep")).to_contain_text("took")
    expect(page.locator("#ops-status-sweep")).to_contain_text("2 breached")
    expect(page.locator("#ops-status-leads")).to_contain_text("2 breached")
    expect(page.locator("#ops-status-notifications")).to_contain_text("held for quiet hours")
    expect(page.locator("#ops-status-stale")).to_have_count(0)
    _shoot(page, "index-ops-manager")
    page.click("#ops-status-leads >> text=2 breached")
    expect(page.locator("#result_list")).to_contain_text("Lukas")
    expect(page.locator("#result_list")).to_contain_text("Ravi")


def test_team_lead_sees_the_status_of_their_team_only(page, live_server, swept):
    log_in(page, live_server, "jonas")
    page.goto(f"{live_server.url}/admin/")
    block = page.locator("#ops-status")
    expect(block.locator("h2")).to_have_text("Escalation status: Berlin sales")
    expect(page.locator("#ops-status-leads")).to_contain_text("1 breached")
    expect(page.locator("#ops-status-sweep")).to_contain_text("1 breached")
    _shoot(page, "index-team-lead")
    page.click("#ops-status-leads >> text=1 breached")
    expect(page.locator("#result_list")).to_contain_text("Lukas")
    expect(page.locator("#result_list")).not_to_contain_text("Ravi")
