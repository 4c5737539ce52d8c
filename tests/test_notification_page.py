"""A notification's admin page shows the message as its recipient saw it (title, headline,
facts, buttons), rendered by the delivery's own renderer, with each field shown once."""

from __future__ import annotations

import html as html_lib

import pytest
import time_machine
from django.urls import reverse

from escalations.models import Notification
from escalations.notify import messages
from escalations.sweep import run_sweep
from tests.conftest import berlin
from tests.factories import make_lead, ops_manager

WARNED_AT = berlin(2026, 3, 2, 10, 50)


@pytest.fixture
def warning(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name="Lukas Schmidt",
            company="Spreeworks",
        )
    with time_machine.travel(WARNED_AT, tick=False):
        run_sweep()
    return Notification.objects.get(kind="warning")


@pytest.fixture
def ops(client, db):
    user = ops_manager()
    client.force_login(user)
    return client


def _page(client, row) -> str:
    url = reverse("admin:escalations_notification_change", args=[row.pk])
    return html_lib.unescape(client.get(url).content.decode())


def test_the_page_shows_the_rendered_message_as_the_recipient_saw_it(ops, warning):
    Notification.objects.filter(pk=warning.pk).update(status="sent", sent_at=WARNED_AT)
    warning.refresh_from_db()
    expected = messages.render(warning, now=WARNED_AT)
    page = _page(ops, warning)
    assert "As the recipient saw it" in page and "As sent on Mon 2026-03-02 10:50 CET" in page
    assert expected.title == "SLA warning" and f">{expected.title}<" in page
    assert expected.headline in page  # "... in NEW since 10:00, SLA breach in 10 minutes."
    assert "SLA breach in 10 minutes" in page
    for label, value in expected.facts:
        assert f">{label}<" in page and value in page
    for button in ("Open lead", "Log call", "Log email", "Disqualify"):
        assert f">{button}<" in page
    assert expected.footer in page


def test_a_reps_signed_link_is_not_shown_to_the_reader(ops, warning):
    page = _page(ops, warning)
    assert "a signed link for Lena Hoffmann (not shown here)" in page
    link = messages.render(warning, now=WARNED_AT).link
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert len(token) > 20 and token not in page


def test_a_message_still_to_go_reads_as_it_would_now(ops, warning):
    with time_machine.travel(berlin(2026, 3, 2, 10, 55), tick=False):
        page = _page(ops, warning)
    assert "Not sent (pending): as it would read now, Mon 2026-03-02 10:55 CET" in page
    assert "SLA breach in 5 minutes" in page


def test_each_time_is_shown_once_in_local_time(ops, warning):
    page = _page(ops, warning)
    assert "Next attempt at" not in page  # the raw UTC field is not shown beside "Next attempt"
    assert page.count("Next attempt") == 1
    assert "CET" in page
