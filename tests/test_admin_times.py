"""One time format in the admin: every instant (history pages, updated / recorded, the timer's
clock, notification attempts) as `Mon 2026-03-02 10:00 CET` in the lead's market zone, or in the
viewer's zone where no market applies (their rep's, else UTC)."""

from __future__ import annotations

import html as html_lib
import re

import pytest
import time_machine
from django.urls import reverse

from escalations.models import SlaPolicy, SlaTimer
from leadops import lifecycle
from leadops.models import Activity
from tests.conftest import berlin
from tests.factories import make_lead, ops_manager_and_team_lead

MONDAY_10 = berlin(2026, 3, 2, 10, 0)
# Django's default rendering of a date-time ("March 2, 2026, 9 a.m."): never in our admin.
DJANGO_DEFAULT = re.compile(r"(January|February|March|April) \d+, 20\d\d")


@pytest.fixture
def people(org):
    return ops_manager_and_team_lead(org)


@pytest.fixture
def lead(org, policies):
    with time_machine.travel(MONDAY_10, tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas")
        lifecycle.record_activity(lead, "note", actor=org.lena, notes="Left a voicemail")
    return lead


def _get(client, user, url) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return html_lib.unescape(response.content.decode())


def test_the_leads_history_page_shows_each_version_in_market_time(client, people, lead):
    with time_machine.travel(berlin(2026, 3, 2, 10, 30), tick=False):
        lifecycle.put_on_hold(lead, actor=people["olga"], reason="customer travelling")
    page = _get(client, people["olga"], reverse("admin:leadops_lead_history", args=[lead.pk]))
    assert "Mon 2026-03-02 10:00 CET" in page  # created
    assert "Mon 2026-03-02 10:30 CET" in page  # put on hold (and the held-at change)
    assert "+00:00" not in page  # no instant printed raw in the changes
    assert not DJANGO_DEFAULT.search(page)


def test_the_lead_page_record_times_are_local(client, people, lead):
    page = _get(client, people["olga"], reverse("admin:leadops_lead_change", args=[lead.pk]))
    assert "Created" in page and "Updated" in page
    assert not DJANGO_DEFAULT.search(page)


def test_an_activity_shows_occurred_and_recorded_in_market_time(client, people, lead):
    activity = Activity.objects.get(lead=lead)
    url = reverse("admin:leadops_activity_change", args=[activity.pk])
    page = _get(client, people["olga"], url)
    assert "Recorded" in page and page.count("Mon 2026-03-02 10:00 CET") >= 2
    assert not DJANGO_DEFAULT.search(page)


def test_the_timer_page_has_every_instant_local_and_one_label_style(client, people, lead):
    timer = SlaTimer.objects.get(lead=lead)
    url = reverse("admin:escalations_slatimer_change", args=[timer.pk])
    page = _get(client, people["olga"], url)
    assert "Running since" in page and "Mon 2026-03-02 10:48 CET" in page  # the warning
    assert "Warn at" not in page and "Next fire at" not in page
    assert "1 h" in page  # the window in business time, in hours
    assert not DJANGO_DEFAULT.search(page)


def test_a_policy_for_every_market_is_shown_in_the_viewers_zone(client, people, policies):
    with time_machine.travel(MONDAY_10, tick=False):
        policy = SlaPolicy.objects.get(pk=policies["NEW"].pk)
        policy.save()  # updated_at now
    url = reverse("admin:escalations_slapolicy_changelist")
    # Jonas's rep works in Berlin: his zone; Olga has no rep: the site's zone (UTC).
    assert "Mon 2026-03-02 10:00 CET" in _get(client, people["jonas"], url)
    assert "Mon 2026-03-02 09:00 UTC" in _get(client, people["olga"], url)
    history = _get(
        client, people["jonas"], reverse("admin:escalations_slapolicy_history", args=[policy.pk])
    )
    assert not DJANGO_DEFAULT.search(history)
