"""`Lead.next_stage_at` (the admin's "most urgent first" order) stays in step with the open timer
through every way a timer changes: the lifecycle, the sweep's batched stage updates,
reassignment, holds, policy changes and plain `.update()` calls."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from escalations import planning
from escalations.models import SlaTimer
from escalations.sweep import run_sweep
from escalations.timers import deactivate_policy
from leadops import lifecycle
from leadops.models import Lead
from tests.conftest import berlin
from tests.factories import make_lead


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _in_step(lead):
    """The lead's next_stage_at, after checking it equals the Python rule on its open timer."""
    lead.refresh_from_db()
    timer = SlaTimer.objects.filter(lead=lead, completed_at__isnull=True).first()
    assert lead.next_stage_at == planning.next_stage_at(timer)
    return lead.next_stage_at


def test_next_stage_follows_the_timer_through_warning_breach_and_reassignment(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    assert _in_step(lead) == berlin(2026, 12, 3, 9, 18)  # the warning
    run_sweep(now=berlin(2026, 12, 3, 9, 18))
    assert _in_step(lead) == berlin(2026, 12, 3, 9, 30)  # the breach
    run_sweep(now=berlin(2026, 12, 3, 9, 30))
    assert _in_step(lead) == berlin(2026, 12, 3, 10, 0)  # the reassignment
    with _at(berlin(2026, 12, 3, 10, 0)):
        assert run_sweep().reassigned == 1
    # Felix's new timer: a fresh warning at 80 % of the hour from 10:00.
    assert _in_step(lead) == berlin(2026, 12, 3, 10, 48)


def test_next_stage_is_the_breach_once_the_last_stage_has_passed(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)
    # The reassignment stage passed without a new owner (limit reached): still most urgent.
    SlaTimer.objects.filter(pk=timer.pk).update(stage="reassigned", next_fire_at=None)
    assert _in_step(lead) == timer.due_at


def test_next_stage_is_empty_on_hold_and_back_on_resume(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 20)):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="Customer at a fair")
    assert _in_step(lead) is None
    with _at(berlin(2026, 12, 3, 17, 30)):
        lifecycle.resume(lead, actor=org.lena)
    assert _in_step(lead) == berlin(2026, 12, 3, 17, 58)


def test_progress_moves_next_stage_to_the_next_states_timer_and_closing_clears_it(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        first = _in_step(lead)
        lifecycle.record_activity(lead, "call", actor=org.lena)
    second = _in_step(lead)
    assert second is not None and second > first  # CONTACTED: a 24 h window
    with _at(berlin(2026, 12, 2, 11, 0)):
        lifecycle.transition(Lead.objects.get(pk=lead.pk), "LOST", actor=org.lena)
    assert _in_step(lead) is None


def test_a_finished_timer_written_later_does_not_clear_the_open_ones_instant(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        lifecycle.record_activity(lead, "call", actor=org.lena)
    open_instant = _in_step(lead)
    SlaTimer.objects.filter(lead=lead, completed_at__isnull=False).update(stage="breached")
    assert _in_step(lead) == open_instant


def test_deactivating_a_policy_moves_next_stage_to_the_fallback_timer(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena)
    assert _in_step(lead) == berlin(2026, 12, 2, 11, 36)  # 80 % of the 2 h inbound window
    inbound = policies["NEW/inbound_web"]
    inbound.active = False
    inbound.save()
    with _at(berlin(2026, 12, 2, 10, 30)):
        assert deactivate_policy(inbound, actor=None, reason="Too generous") == 1
    assert _in_step(lead) == berlin(2026, 12, 2, 10, 30) + timedelta(minutes=48)


def test_a_batch_of_stage_updates_keeps_every_lead_in_step(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        leads = [
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
            for i in range(6)
        ]
    result = run_sweep(now=berlin(2026, 12, 2, 10, 50))
    assert result.warned == 6
    assert {_in_step(lead) for lead in leads} == {berlin(2026, 12, 2, 11, 0)}
