"""The lead list in a real Chromium, most urgent first, as an ops manager (every team) and as a
team lead (their team only); screenshots go to the git-ignored `e2e-artefacts/`."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from django.conf import settings  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from leadops import lifecycle  # noqa: E402
from leadops.models import Lead  # noqa: E402
from tests.factories import UserFactory, make_lead  # noqa: E402
from tests.test_e2e_admin import _groups, log_in  # noqa: E402

pytestmark = pytest.mark.e2e
ARTEFACTS = Path(settings.BASE_DIR) / "e2e-artefacts"


@pytest.fixture
def urgent_leads(org, policies, live_server):
    groups = _groups()
    UserFactory(username="olga").groups.add(groups["Ops managers"])
    jonas = UserFactory(username="jonas")
    jonas.groups.add(groups["Team leads"])
    org.jonas.user = jonas
    org.jonas.save()
    # Same start, Berlin: the 1 h paid-social window warns before the 2 h inbound-web one.
    soon = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Ute Soon")
    later = make_lead(
        team=org.berlin_team, source=org.inbound_web, owner=org.felix, name="Lars Later"
    )
    closed = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Carla")
    lifecycle.transition(closed, "LOST", actor=org.lena)
    india = make_lead(team=org.india_team, source=org.paid_social, owner=org.asha, name="Kavya")
    return {"soon": soon, "later": later, "closed": closed, "india": india}


def _names(page) -> list[str]:
    return page.locator("#result_list tbody th.field-name a").all_inner_texts()


def _screenshot(page, name: str) -> None:
    ARTEFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1700, "height": 900})  # the whole list, Next stage included
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def test_ops_manager_sees_every_team_most_urgent_first(page, live_server, urgent_leads):
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/leadops/lead/")
    expect(page.locator("#result_list thead")).to_contain_text("Next stage")
    names = _names(page)
    _screenshot(page, "lead-list-most-urgent-first-ops-manager")
    by_urgency = [
        lead.name
        for lead in Lead.objects.exclude(next_stage_at=None).order_by("next_stage_at", "-id")
    ]
    assert names == [*by_urgency, "Carla"]
    assert names.index("Ute Soon") < names.index("Lars Later")
    expect(
        page.locator("#result_list tbody tr").first.locator("td.field-next_stage")
    ).to_contain_text("warning")


def test_team_lead_sees_their_team_most_urgent_first_and_can_reverse_it(
    page, live_server, urgent_leads
):
    log_in(page, live_server, "jonas")
    page.goto(f"{live_server.url}/admin/leadops/lead/")
    assert _names(page) == ["Ute Soon", "Lars Later", "Carla"]
    _screenshot(page, "lead-list-most-urgent-first-team-lead")
    # The column header sorts by next stage (ascending first), then the other way round.
    page.locator("#result_list thead th.column-next_stage div.text a").click()
    assert _names(page) == ["Ute Soon", "Lars Later", "Carla"]
    page.locator("#result_list thead th.column-next_stage div.text a").click()
    assert _names(page) == ["Carla", "Lars Later", "Ute Soon"]
    _screenshot(page, "lead-list-next-stage-descending-team-lead")
