"""Shared fixtures: a small named org (Berlin and Bangalore teams), policies, time travel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from escalations.models import SlaPolicy
from teams.calendar_builders import clear_calendar_cache
from teams.models import Role
from tests.factories import MarketFactory, RepFactory, SourceFactory, TeamFactory

# The fake Slack/Teams servers and the seed lead of the notification tests.
pytest_plugins = ["tests.notify_fixtures", "tests.api_fixtures"]

BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def berlin(*args) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def kolkata(*args) -> datetime:
    return datetime(*args, tzinfo=KOLKATA)


@pytest.fixture(autouse=True)
def _fresh_calendars():
    clear_calendar_cache()
    yield
    clear_calendar_cache()


@dataclass
class Org:
    """Two markets with a team each. Berlin: manager Katrin, team lead Jonas (capacity 0: he
    takes no leads), reps Lena and Felix. Bangalore: manager Vikram, reps Asha and Rahul."""

    de: object
    india: object
    berlin_team: object
    india_team: object
    katrin: object
    jonas: object
    lena: object
    felix: object
    vikram: object
    asha: object
    rahul: object
    paid_social: object
    inbound_web: object


@pytest.fixture
def org(db) -> Org:
    de = MarketFactory(
        code="DE",
        name="Germany",
        timezone="Europe/Berlin",
        holiday_country="DE",
        holiday_subdivision="BE",
        hours={d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    india = MarketFactory(
        code="IN",
        name="India",
        timezone="Asia/Kolkata",
        holiday_country="IN",
        hours={d: ["09:30-18:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    berlin_team = TeamFactory(
        slug="de-berlin", name="Berlin sales", market=de, slack_channel_id="C0DE"
    )
    india_team = TeamFactory(
        slug="in-inside", name="India inside sales", market=india, slack_channel_id="C0IN"
    )
    return Org(
        de=de,
        india=india,
        berlin_team=berlin_team,
        india_team=india_team,
        katrin=RepFactory(
            name="Katrin Vogel",
            email="katrin@example.com",
            team=berlin_team,
            role=Role.MANAGER,
            slack_user_id="UKATRIN",
        ),
        jonas=RepFactory(
            name="Jonas Becker",
            email="jonas@example.com",
            team=berlin_team,
            role=Role.LEAD,
            slack_user_id="UJONAS",
            capacity=0,
        ),
        lena=RepFactory(
            name="Lena Hoffmann", email="lena@example.com", team=berlin_team, slack_user_id="ULENA"
        ),
        felix=RepFactory(
            name="Felix Wagner", email="felix@example.com", team=berlin_team, slack_user_id="UFELIX"
        ),
        vikram=RepFactory(
            name="Vikram Shah",
            email="vikram@example.com",
            team=india_team,
            role=Role.MANAGER,
            slack_user_id="UVIKRAM",
        ),
        asha=RepFactory(
            name="Asha Rao", email="asha@example.com", team=india_team, slack_user_id="UASHA"
        ),
        rahul=RepFactory(
            name="Rahul Verma", email="rahul@example.com", team=india_team, slack_user_id="URAHUL"
        ),
        paid_social=SourceFactory(code="paid_social", name="Paid social"),
        inbound_web=SourceFactory(code="inbound_web", name="Inbound web"),
    )


@pytest.fixture
def policies(org):
    """NEW 1h (default), CONTACTED 24h, QUALIFIED 5bd, PROPOSAL 10bd; NEW from inbound web 2h."""
    return {
        "NEW": SlaPolicy.objects.create(state="NEW", window="1h"),
        "NEW/inbound_web": SlaPolicy.objects.create(
            state="NEW", source=org.inbound_web, window="2h"
        ),
        "CONTACTED": SlaPolicy.objects.create(state="CONTACTED", window="24h"),
        "QUALIFIED": SlaPolicy.objects.create(state="QUALIFIED", window="5bd"),
        "PROPOSAL": SlaPolicy.objects.create(state="PROPOSAL", window="10bd"),
    }


# --- browser tests ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(config, items):
    """Browser tests need Debian's chromium; CI (LEADOPS_REQUIRE_E2E=1) refuses to skip them."""
    import os
    from pathlib import Path

    if Path(CHROMIUM).exists():
        return
    if os.environ.get("LEADOPS_REQUIRE_E2E"):
        raise pytest.UsageError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    skip = pytest.mark.skip(reason="Debian chromium is not installed (apt-get install -y chromium)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def postgres_transactional(why: str) -> list:
    """The marks of a test module that needs PostgreSQL (`why`) and real transactions; skipped
    at collection elsewhere (a fixture-time skip breaks serialized_rollback on SQLite)."""
    return [
        pytest.mark.postgres,
        pytest.mark.skipif(
            connection.vendor != "postgresql",
            reason=f"needs PostgreSQL: DATABASE_URL=postgres://... ({why})",
        ),
        pytest.mark.django_db(transaction=True),
    ]
