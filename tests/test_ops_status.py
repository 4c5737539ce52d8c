"""The status block on the admin index and `/healthz` (SPEC §10): the last sweep (when, how
long, what fired), the due backlog, open leads at risk and breached, notifications pending, held
and failed; scoped for team leads; 503 when the sweep has stopped or the database is gone."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from escalations import status as ops_status
from escalations.models import Notification, SweepRun
from escalations.permissions import scope_of
from escalations.sweep import run_sweep
from tests.conftest import berlin
from tests.factories import (
    UserFactory,
    make_lead,
    ops_manager_and_team_lead,
)

# Monday 2 March 2026; leads created at 10:00 Berlin (1 h window: warning 10:48, breach 11:00).
CREATED = berlin(2026, 3, 2, 10, 0)
AFTER_BREACH = berlin(2026, 3, 2, 11, 5)


@pytest.fixture
def people(org):
    nobody = UserFactory(username="nobody", is_staff=True)
    return {**ops_manager_and_team_lead(org), "nobody": nobody}


@pytest.fixture
def swept(org, policies):
    """Berlin: Lukas breached, Anna warned (2 h inbound-web window); Bangalore: Ravi breached.
    The sweep at 11:05 Berlin fired them all."""
    with time_machine.travel(CREATED, tick=False):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas")
        make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.felix, name="Anna")
        make_lead(team=org.india_team, source=org.paid_social, owner=org.asha, name="Ravi")
    # Bangalore opened at 09:30 IST = 05:00 Berlin: Ravi's hour was up long before.
    with time_machine.travel(AFTER_BREACH, tick=False):
        result = run_sweep()
    return result


def test_status_counts_what_the_sweep_fired_and_what_is_open(swept):
    status = ops_status.collect(now=AFTER_BREACH + timedelta(seconds=30))
    assert not status.stale
    assert status.fired["warned"] == swept.warned and status.fired["breached"] == swept.breached
    assert status.breached.value == 2  # Lukas, Ravi
    assert status.at_risk.value == 0  # Anna's warning comes at 11:36 (80 % of 2 h)
    assert status.due_backlog.value == 0
    # Warnings to reps are held for their working hours only when they are off; here every
    # message is due now (pending) or went to a manager.
    assert status.pending.value == Notification.objects.filter(status="pending").count()
    assert status.held.value == 0


def test_the_index_shows_the_status_block_to_an_ops_manager(client, people, swept):
    client.force_login(people["olga"])
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=1), tick=False):
        html = client.get(reverse("admin:index")).content.decode()
    assert 'id="ops-status"' in html
    assert "Last sweep" in html and "took" in html and "breached" in html
    assert "2 breached" in html
    assert "held for quiet hours" in html and "failed in the last 24 h" in html


def test_a_team_lead_sees_the_block_for_their_team_only(client, people, swept):
    client.force_login(people["jonas"])
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=1), tick=False):
        html = client.get(reverse("admin:index")).content.decode()
    assert "Escalation status: Berlin sales" in html
    assert "1 breached" in html  # Lukas; Ravi is Bangalore's
    status = ops_status.collect(now=AFTER_BREACH, scope=scope_of(people["jonas"]))
    assert status.breached.value == 1 and status.fired["breached"] == 1


def test_counts_stop_at_the_cap_and_say_so(client, people, swept, monkeypatch):
    monkeypatch.setattr(ops_status, "CAP", 1)
    status = ops_status.collect(now=AFTER_BREACH)
    assert status.breached == ops_status.CappedCount(1, capped=True)
    assert str(status.breached) == "1+"
    assert "breached" in status.as_dict()["capped"]
    client.force_login(people["olga"])
    with time_machine.travel(AFTER_BREACH, tick=False):
        assert "1+ breached" in client.get(reverse("admin:index")).content.decode()


def test_a_team_leads_counts_stop_at_the_smaller_team_cap(people, swept, monkeypatch):
    monkeypatch.setattr(ops_status, "TEAM_CAP", 0)
    status = ops_status.collect(now=AFTER_BREACH, scope=scope_of(people["jonas"]))
    assert status.breached == ops_status.CappedCount(0, capped=True)
    assert status.as_dict()["capped_at"] == 0
    everything = ops_status.collect(now=AFTER_BREACH)
    assert everything.breached == ops_status.CappedCount(2, capped=False)


def test_held_messages_are_counted_apart_from_pending(swept):
    row = Notification.objects.filter(status="pending").first() or Notification.objects.first()
    Notification.objects.filter(pk=row.pk).update(
        status="pending", attempts=0, next_attempt_at=AFTER_BREACH + timedelta(hours=12)
    )
    status = ops_status.collect(now=AFTER_BREACH)
    assert status.held.value == 1
    assert status.pending.value == Notification.objects.filter(status="pending").count() - 1


def test_a_user_who_leads_no_team_sees_no_block(client, people, swept):
    client.force_login(people["nobody"])
    html = client.get(reverse("admin:index")).content.decode()
    assert 'id="ops-status"' not in html


def test_the_index_stays_within_twelve_queries(client, people, swept):
    for user in (people["olga"], people["jonas"]):
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("admin:index")).status_code == 200
        assert len(queries) <= 12, [q["sql"][:120] for q in queries.captured_queries]


def test_healthz_is_200_with_the_same_figures_while_the_sweep_runs(client, swept):
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=2), tick=False):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["leads"] == {"at_risk": 0, "breached": 2}
    assert body["last_sweep"]["fired"]["breached"] == 2
    assert set(body["notifications"]) == {"pending", "held_for_quiet_hours", "failed_24h"}


def test_healthz_is_503_when_the_last_sweep_is_older_than_three_intervals(client, swept, settings):
    settings.SWEEP_INTERVAL_MINUTES = 1
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=3, seconds=1), tick=False):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "stale"
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=2, seconds=59), tick=False):
        assert client.get("/healthz").status_code == 200


def test_healthz_is_503_before_any_sweep_has_run(client, db):
    assert not SweepRun.objects.exists()
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["last_sweep"] is None


def test_healthz_is_503_when_the_database_does_not_answer(client, db, monkeypatch):
    def unreachable(**kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(ops_status, "collect", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "database unreachable"


def test_the_index_warns_when_the_sweep_has_stopped(client, people, swept):
    client.force_login(people["olga"])
    with time_machine.travel(AFTER_BREACH + timedelta(minutes=30), tick=False):
        html = client.get(reverse("admin:index")).content.decode()
    assert 'id="ops-status-stale"' in html and "has not run for 30 min" in html
