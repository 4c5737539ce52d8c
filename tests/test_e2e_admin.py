"""The admin console in a real Chromium: a team lead reverts a reassignment of their team through
the form, an ops manager reads the policy matrix."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

import importlib  # noqa: E402

import pytest  # noqa: E402
from django.contrib.auth.models import Group, Permission  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from escalations.models import Reassignment, SlaPolicy  # noqa: E402
from escalations.reassign import reassign_lead  # noqa: E402
from leadops.models import Lead  # noqa: E402
from tests.factories import make_lead, ops_manager_and_team_lead  # noqa: E402

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": CHROMIUM_ARGS,
    }


def _groups():
    """The persona groups with the migration's permissions. A transactional test before this one
    may have flushed the rows the migration wrote; the definitions are reused, not repeated."""
    migration = importlib.import_module("escalations.migrations.0002_groups_thresholds")
    groups = {}
    for name, spec in (
        ("Ops managers", migration.OPS_MANAGER_PERMS),
        ("Team leads", migration.TEAM_LEAD_PERMS),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        perms = [
            perm
            for app_label, codename in migration._codenames(spec)
            if (
                perm := Permission.objects.filter(
                    content_type__app_label=app_label, codename=codename
                ).first()
            )
        ]
        group.permissions.set(perms)
        groups[name] = group
    return groups


@pytest.fixture
def personas(org, policies, live_server):
    _groups()  # the migrations' groups, back after an earlier test's flush
    return ops_manager_and_team_lead(org)


def log_in(page, live_server, username):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username)


def test_team_lead_sees_sla_status_and_reverts_a_reassignment_through_the_form(
    page, live_server, personas, org
):
    lead = make_lead(
        team=org.berlin_team,
        source=org.paid_social,
        owner=org.lena,
        name="Lukas Schmidt",
        company="Spreeworks",
    )
    make_lead(
        team=org.india_team,
        source=org.paid_social,
        owner=org.asha,
        name="Kavya Reddy",
        company="Zomato",
    )
    reassignment = reassign_lead(lead, org.felix, cause="manual", actor=None)

    log_in(page, live_server, "jonas")
    page.goto(f"{live_server.url}/admin/leadops/lead/")
    expect(page.locator("#result_list thead")).to_contain_text("SLA status")
    expect(page.locator("#result_list")).to_contain_text("Lukas Schmidt")
    expect(page.locator("#result_list")).not_to_contain_text("Kavya Reddy")
    expect(page.locator("#result_list .sla-status").first).to_be_visible()

    page.goto(f"{live_server.url}/admin/escalations/reassignment/")
    page.locator("#result_list tbody tr").first.locator("a").first.click()
    expect(page.locator("#content")).to_contain_text("Felix Wagner")
    page.click("a.revert-link")
    page.fill("textarea[name=reason]", "Lena has the history with this customer")
    page.click("input[name=apply]")
    expect(page.locator("ul.messagelist")).to_contain_text("Reverted")

    reassignment.refresh_from_db()
    assert reassignment.is_reverted
    assert reassignment.revert_reason == "Lena has the history with this customer"
    assert Lead.objects.get(pk=lead.pk).owner == org.lena
    assert Reassignment.objects.count() == 1


def test_ops_manager_opens_the_policy_matrix(page, live_server, personas, org, policies):
    SlaPolicy.objects.create(state="NEW", market=org.de, source=org.inbound_web, window="30m")
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/escalations/slapolicy/")
    page.click("a.matrix-link")
    page.select_option("#id_market", "DE")
    matrix = page.locator("#sla-matrix")
    expect(matrix).to_contain_text("30m")
    expect(matrix).to_contain_text("market + source")
    expect(matrix).to_contain_text("no SLA")
    page.select_option("#id_market", "IN")
    expect(matrix).not_to_contain_text("30m")
    expect(matrix).to_contain_text("2h")
