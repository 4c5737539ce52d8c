"""The rules shared by the link page and the Slack app (escalations/actions.py): who may act on a
lead, and an action recorded once per key, also under concurrency."""

from __future__ import annotations

import threading

import pytest
import time_machine
from django.db import connection, connections

from escalations import actions
from escalations.models import ActionReceipt
from leadops.models import Activity
from tests.conftest import berlin
from tests.factories import make_lead

NOW = berlin(2026, 3, 2, 9, 48)


@pytest.fixture
def lead(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 8, 0), tick=False):
        return make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)


@pytest.mark.parametrize(
    ("who", "allowed", "code"),
    [
        ("lena", True, ""),  # the owner
        ("jonas", True, ""),  # team lead of the lead's team
        ("katrin", True, ""),  # manager of the lead's team
        ("felix", False, "not_allowed"),  # a rep of the same team
        ("vikram", False, "not_allowed"),  # a manager of another team
    ],
)
def test_only_the_owner_or_a_lead_or_manager_of_the_team_may_act(org, lead, who, allowed, code):
    permission = actions.permission(getattr(org, who), lead)
    assert (permission.allowed, permission.code) == (allowed, code)
    if not allowed:
        assert permission.reason.startswith(
            "You can't act on this lead: it is owned by Lena Hoffmann."
        )


def test_nobody_acts_on_a_closed_lead_or_as_an_inactive_rep(org, lead):
    org.lena.active = False
    assert actions.permission(org.lena, lead).code == "inactive"
    lead.state = "WON"
    assert actions.permission(org.katrin, lead).code == "closed"


def test_an_action_is_recorded_once_per_key(org, lead):
    with time_machine.travel(NOW, tick=False):
        first = actions.act_by_link(org.lena, lead.pk, "call", nonce="n1")
        again = actions.act_by_link(org.lena, lead.pk, "call", nonce="n1")
        other = actions.act_by_link(org.lena, lead.pk, "email", nonce="n2")

    assert (first.recorded, again.recorded, other.recorded) == (True, False, True)
    assert again.summary == first.summary == "Call logged by Lena Hoffmann at 09:48 CET · SLA met"
    assert again.activity == first.activity
    assert Activity.objects.filter(lead=lead).count() == 2
    assert ActionReceipt.objects.count() == 2


def test_a_refused_action_keeps_its_key_free(org, lead):
    with pytest.raises(actions.Refused):
        actions.act_by_link(org.felix, lead.pk, "call", nonce="n1")
    assert not ActionReceipt.objects.exists()
    assert not Activity.objects.filter(lead=lead).exists()


def test_a_call_by_a_team_lead_is_recorded_but_leaves_the_owners_clock_running(org, lead):
    with time_machine.travel(NOW, tick=False):
        outcome = actions.act_by_link(org.jonas, lead.pk, "call", nonce="n1")
    assert outcome.recorded and not outcome.activity.counted_as_progress
    assert outcome.summary == (
        "Call logged by Jonas Becker at 09:48 CET · SLA clock still running (SLA breach in "
        "12 minutes)"
    )
    lead.refresh_from_db()
    assert lead.state == "NEW"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_one_action_record_it_once(org, policies):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: DATABASE_URL=postgres://... (concurrent transactions)")
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    timer_id = lead.timers.get().pk
    barrier = threading.Barrier(4)
    results, errors = [], []

    def deliver():
        try:
            barrier.wait(timeout=10)
            results.append(
                actions.act_by_slack(
                    "ULENA",
                    lead.pk,
                    "call",
                    key="slack:msg:D1:1700000000.000001:lead_log_call",
                    expect_timer_id=timer_id,
                    action_id="lead_log_call",
                ).recorded
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert sorted(results) == [False, False, False, True]
    assert Activity.objects.filter(lead=lead).count() == 1
