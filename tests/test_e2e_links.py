"""The signed lead page in a real Chromium, opened from the link of a real rendered message: a rep
logs a call (the POST must pass Django's CSRF check in a browser, which `Referrer-Policy:
no-referrer` broke with `Origin: null`), and disqualifies a lead on a phone-sized screen."""

from __future__ import annotations

import os

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop

from datetime import timedelta  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import pytest  # noqa: E402
import time_machine  # noqa: E402
from django.utils import timezone  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

from escalations.models import Notification, SlaPolicy, SlaTimer  # noqa: E402
from escalations.notify.messages import render  # noqa: E402
from escalations.sweep import run_sweep  # noqa: E402
from leadops.models import Activity, Lead  # noqa: E402
from tests.factories import make_lead  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def warned_lead(org, policies, live_server):
    """A lead of Lena's, created 50 minutes ago under a 1 h wall-clock policy, and the warning
    the sweep wrote for her (now, in real time: the signed link must not have expired)."""
    SlaPolicy.objects.create(state="NEW", market=org.de, window="1h", clock="calendar")
    now = timezone.now()
    with time_machine.travel(now - timedelta(minutes=50), tick=False):
        lead = make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name="Lukas Schmidt",
            company="Spreeworks",
            phone="+49 30 1234567",
        )
    run_sweep(now=now)
    warning = Notification.objects.get(lead=lead, kind="warning")
    return lead, warning


def link_on(live_server, notification) -> str:
    """The link of the message rendered from the outbox row, on the live server."""
    message = render(notification, now=timezone.now())
    [open_button] = [b for b in message.buttons if b.action_id == "lead_open"]
    assert open_button.url == message.link
    return f"{live_server.url}{urlparse(message.link).path}"


def test_a_rep_logs_a_call_from_the_link_in_a_warning(page, live_server, warned_lead, org):
    lead, warning = warned_lead
    old_timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)

    page.goto(link_on(live_server, warning))
    expect(page.locator("h1")).to_have_text("Lukas Schmidt")
    expect(page.locator(".explain-sla")).to_contain_text("Warning (80 %)")
    page.get_by_role("button", name="Log call").click()

    expect(page.locator(".flash")).to_contain_text("Call logged by Lena Hoffmann at")
    expect(page.locator(".flash")).to_contain_text("· SLA met")
    expect(page.locator("body")).to_contain_text("CONTACTED since")
    [activity] = Activity.objects.filter(lead=lead)
    assert (activity.kind, activity.actor_id, activity.counted_as_progress) == (
        "call",
        org.lena.pk,
        True,
    )
    old_timer.refresh_from_db()
    assert old_timer.outcome == "met"
    new_timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)
    assert (new_timer.state, new_timer.started_at) == ("CONTACTED", activity.recorded_at)


def test_a_rep_disqualifies_a_lead_on_a_phone(page, live_server, warned_lead):
    lead, warning = warned_lead
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(link_on(live_server, warning))

    # Readable at 390 px: nothing wider than the screen, the buttons inside it.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    disqualify = page.get_by_role("button", name="Disqualify")
    box = disqualify.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390

    disqualify.click()  # no reason: the browser does not send the form
    expect(page.locator(".flash")).to_have_count(0)
    assert Lead.objects.get(pk=lead.pk).state == "NEW"

    page.get_by_label("Disqualify: why? (required)").fill("Student, no budget")
    disqualify.click()

    expect(page.locator(".flash")).to_contain_text("Disqualified by Lena Hoffmann at")
    expect(page.locator(".flash")).to_contain_text("(Student, no budget) · SLA met")
    expect(page.locator(".note")).to_contain_text("This lead is closed (Unqualified).")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    lead.refresh_from_db()
    assert lead.state == "UNQUALIFIED"
    assert Activity.objects.get(lead=lead).reason == "Student, no budget"
