"""Concurrent sweeps on PostgreSQL, each thread on its own connection: no stage fires twice,
no rep is pushed over capacity. (SQLite serialises writers and cannot show SKIP LOCKED.)"""

from __future__ import annotations

import threading
import time
from collections import Counter

import time_machine
from django.db import connections

from audit.models import AuditEvent
from escalations import reassign
from escalations.models import Notification, Reassignment, SlaTimer
from escalations.sweep import run_sweep
from leadops.models import Lead
from tests.conftest import berlin, postgres_transactional
from tests.factories import RepFactory, make_lead

pytestmark = postgres_transactional("SKIP LOCKED, row locks")


def _in_threads(n, target):
    """Run target(i) in n threads released together; each thread uses its own connection."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = target(i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def test_four_concurrent_sweeps_fire_each_stage_exactly_once(org, policies):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        reps = [RepFactory(team=org.berlin_team, capacity=1000) for _ in range(10)]
        for i in range(300):
            make_lead(
                team=org.berlin_team, source=org.paid_social, owner=reps[i % 10], name=f"Lead {i}"
            )
    now = berlin(2026, 12, 2, 10, 50)  # every timer is at 83 %: one warning each
    results = _in_threads(4, lambda i: run_sweep(now=now, batch_size=20))
    assert sum(r.warned for r in results) == 300
    assert sum(1 for r in results if r.warned) >= 2, "the sweeps did not overlap"
    per_timer = Counter(
        AuditEvent.objects.filter(kind="sla_warning").values_list("timer_id", flat=True)
    )
    assert len(per_timer) == 300 and set(per_timer.values()) == {1}
    assert Notification.objects.filter(kind="warning").count() == 300
    assert set(
        SlaTimer.objects.filter(completed_at__isnull=True).values_list("stage", flat=True)
    ) == {"warned"}


def test_concurrent_late_sweeps_fire_warn_and_breach_once_each_in_order(org, policies):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        rep = RepFactory(team=org.berlin_team, capacity=1000)
        for i in range(100):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=rep, name=f"L{i}")
    now = berlin(2026, 12, 2, 11, 10)
    _in_threads(3, lambda i: run_sweep(now=now, batch_size=7))
    # Only the sweep's stages: delivery (run inline by the task broker in tests) adds its own
    # notification_sent rows, which are not what this test is about.
    stages = AuditEvent.objects.filter(kind__in=["sla_warning", "sla_breach"])
    pairs = Counter(stages.values_list("timer_id", "kind"))
    assert set(pairs.values()) == {1} and len(pairs) == 200
    for timer_id in SlaTimer.objects.values_list("pk", flat=True):
        kinds = list(stages.filter(timer_id=timer_id).order_by("id").values_list("kind", flat=True))
        assert kinds == ["sla_warning", "sla_breach"]


def test_two_concurrent_reassignments_never_overfill_the_last_free_slot(org, policies, monkeypatch):
    org.felix.capacity = 1  # one free slot; nobody else available
    org.felix.save()
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        first = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="A")
        second = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="B")
    for lead in (first, second):  # both at the breach already
        SlaTimer.objects.filter(lead=lead).update(stage="breached")
    real = reassign.load_pool
    slowed = []

    def slow_pool(*args, **kwargs):
        # The sweep's own path (reassign_due -> load_pool -> choose -> _apply_moves): hold the
        # rep locks (and the counted loads) while the other sweep looks for a candidate.
        pool = real(*args, **kwargs)
        slowed.append(1)
        time.sleep(0.5)
        return pool

    monkeypatch.setattr(reassign, "load_pool", slow_pool)
    now = berlin(2026, 12, 2, 11, 31)
    results = _in_threads(2, lambda i: run_sweep(now=now, batch_size=1, max_batches=1))
    assert len(slowed) == 2, "both sweeps went through the slowed candidate search"
    assert sorted((r.reassigned, r.no_candidate) for r in results) == [(0, 1), (1, 0)]
    assert Lead.objects.filter(owner=org.felix).count() == 1
    assert Reassignment.objects.count() == 1
    no_candidate = AuditEvent.objects.get(kind="reassign_no_candidate")
    reasons = {c["name"]: c["reason"] for c in no_candidate.details["candidates"]}
    assert reasons["Felix Wagner"] == "at_capacity"
