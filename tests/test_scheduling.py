"""The sweep runs from a django-q2 schedule installed by migrate; the queue runs on the ORM
broker by default and on Redis when REDIS_URL is set (CI runs both)."""

from __future__ import annotations

import os
import uuid

import pytest
import time_machine
from django_q.models import Schedule

from audit.models import AuditEvent
from escalations import tasks
from escalations.schedule import SWEEP_TASK, install_schedules
from escalations.tasks import sweep
from tests.conftest import berlin
from tests.factories import make_lead


@pytest.mark.django_db
def test_migrate_installs_the_sweep_schedule_once():
    assert Schedule.objects.filter(func=SWEEP_TASK).count() == 1
    install_schedules()
    install_schedules()
    schedule = Schedule.objects.get(func=SWEEP_TASK)
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (Schedule.MINUTES, 1, -1)


def test_due_schedule_runs_the_sweep(org, policies, monkeypatch):
    from django_q import conf
    from django_q.scheduler import scheduler

    monkeypatch.setattr(conf.Conf, "SYNC", True)
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    Schedule.objects.filter(func=SWEEP_TASK).update(next_run=berlin(2026, 12, 2, 10, 49))
    with time_machine.travel(berlin(2026, 12, 2, 10, 50), tick=False):
        scheduler()
    assert AuditEvent.objects.filter(lead=lead, kind="sla_warning").exists()
    assert Schedule.objects.get(func=SWEEP_TASK).next_run > berlin(2026, 12, 2, 10, 50)


def test_task_entry_point_returns_the_sweep_summary(db):
    assert sweep().startswith("sweep: 0 warned")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL not set (CI sets it)")
def test_redis_broker_carries_a_task_round_trip():
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.signing import SignedPackage

    assert Conf.REDIS, "REDIS_URL is set but django-q2 is not configured for Redis"
    broker = get_broker(list_key=f"leadops-test-{uuid.uuid4().hex}")
    try:
        broker.enqueue(SignedPackage.dumps({"id": "t1", "func": "escalations.tasks.sweep"}))
        assert broker.queue_size() == 1
        ((task_id, payload),) = broker.dequeue()
        assert SignedPackage.loads(payload)["func"] == "escalations.tasks.sweep"
        broker.acknowledge(task_id)
    finally:
        broker.delete_queue()


def _due_leads(org, n):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        for i in range(n):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")


def test_sweep_task_asks_other_workers_to_help_when_a_backlog_shows(
    org, policies, settings, monkeypatch
):
    settings.SWEEP_BATCH_SIZE = 2
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "workers": 3}
    queued = []
    monkeypatch.setattr(tasks, "_enqueue_sweep", lambda helpers: queued.append(helpers))
    _due_leads(org, 5)
    with time_machine.travel(berlin(2026, 12, 2, 10, 50), tick=False):
        summary = tasks.sweep()
    assert summary.startswith("sweep: 5 warned")
    assert queued == [0, 0]  # two helpers, who will not fan out themselves


def test_quiet_sweep_task_asks_nobody(org, policies, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks, "_enqueue_sweep", lambda helpers: queued.append(helpers))
    _due_leads(org, 3)
    with time_machine.travel(berlin(2026, 12, 2, 10, 50), tick=False):
        tasks.sweep()
    assert queued == []


def test_sweep_task_that_stops_at_its_cap_queues_its_continuation(
    org, policies, settings, monkeypatch
):
    settings.SWEEP_BATCH_SIZE = 2
    settings.SWEEP_MAX_BATCHES = 1
    queued = []
    monkeypatch.setattr(tasks, "_enqueue_sweep", lambda helpers: queued.append(helpers))
    _due_leads(org, 5)
    with time_machine.travel(berlin(2026, 12, 2, 10, 50), tick=False):
        assert tasks.sweep(helpers=0).startswith("sweep: 2 warned")
    assert queued == [0]
