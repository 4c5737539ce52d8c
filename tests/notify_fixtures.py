"""Fixtures for the notification tests: fake Slack and Teams servers wired into the settings, and
the seed's lead (Aisha Al-Mansoori from Emirates Group, owned by Lena in Berlin, NEW since Monday
08:00 with a 1 h business window: warning at 09:48, breach at 10:00, reassignment at 10:30)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from escalations.models import Notification
from escalations.sweep import run_sweep
from tests.conftest import berlin
from tests.factories import make_lead
from tests.fakes import FakeSlack, FakeWebhook

__all__ = [
    "CREATED",
    "WARN_AT",
    "DUE_AT",
    "REASSIGN_AT",
    "after",
    "sweep_at",
    "fake_slack",
    "slack_on",
    "fake_teams",
    "channels_off",
    "seed_lead",
    "warning",
    "breach",
]

CREATED = berlin(2026, 3, 2, 8, 0)  # a Monday; Berlin opens at 09:00
WARN_AT = berlin(2026, 3, 2, 9, 48)
DUE_AT = berlin(2026, 3, 2, 10, 0)
REASSIGN_AT = berlin(2026, 3, 2, 10, 30)


@pytest.fixture
def fake_slack():
    with FakeSlack() as server:
        yield server


@pytest.fixture
def slack_on(settings, fake_slack):
    """Slack configured and pointed at the fake server (Teams and email stay off)."""
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.SLACK_API_URL = fake_slack.url
    settings.EMAIL_ENABLED = False
    return fake_slack


@pytest.fixture
def fake_teams():
    with FakeWebhook() as server:
        yield server


@pytest.fixture
def channels_off(settings):
    """Nothing configured: messages go to the console transport."""
    settings.SLACK_BOT_TOKEN = ""
    settings.EMAIL_ENABLED = False
    settings.TEAMS_ENABLED = True  # on, but no team has a webhook
    return settings


@pytest.fixture
def seed_lead(org, policies):
    with time_machine.travel(CREATED, tick=False):
        return make_lead(
            team=org.berlin_team, source=org.paid_social, owner=org.lena, phone="+49 30 1234567"
        )


def sweep_at(when) -> None:
    with time_machine.travel(when, tick=False):
        run_sweep(now=when)


@pytest.fixture
def warning(seed_lead) -> Notification:
    """The warning to Lena, written by the sweep at 09:48 and due at once."""
    sweep_at(WARN_AT)
    return Notification.objects.get(lead=seed_lead, kind="warning")


@pytest.fixture
def breach(seed_lead) -> Notification:
    """The breach notice for Katrin (the team channel), written by the sweep at 10:00."""
    sweep_at(WARN_AT)
    sweep_at(DUE_AT)
    return Notification.objects.get(lead=seed_lead, kind="breach")


def after(when, **kwargs):
    return when + timedelta(**kwargs)
