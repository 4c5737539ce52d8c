"""The API's pages in a real Chromium: an ops manager issues a token in the admin and the CRM
uses it; the docs page renders the schema with nothing loaded from outside the site."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

import json  # noqa: E402
import urllib.request  # noqa: E402

import pytest  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from tests.factories import UserFactory  # noqa: E402
from tests.test_e2e_admin import log_in  # noqa: E402

pytestmark = pytest.mark.e2e


def test_ops_manager_issues_a_token_that_the_crm_then_uses(page, live_server, callers, org):
    UserFactory(username="webforms")
    log_in(page, live_server, "olga")
    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Tokens").click()
    page.get_by_role("link", name="Add token").click()
    page.select_option("#id_user", label="webforms")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("Copy the key now")
    key = page.locator(".field-key .readonly").inner_text().strip()

    request = urllib.request.Request(
        f"{live_server.url}/api/v1/leads/", headers={"Authorization": f"Token {key}"}
    )
    # webforms is in no group yet: authenticated (not 401) but not allowed to read leads.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"]["code"] == "permission_denied"


def test_the_docs_page_renders_the_schema_from_this_site_only(page, live_server, callers, org):
    outside = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page.goto(f"{live_server.url}/api/docs/")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("LeadOps escalation API")
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/leads/")
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/reassignments/{id}/revert/")
    assert [url for url in outside if not url.startswith("data:")] == []
