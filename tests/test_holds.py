"""A held lead keeps its pause through every new timer (SPEC §6, issue 14 item 2): a manual
reassignment, a revert, a policy deactivation and a rep's hand-over each start a timer that is
paused like the hold, and the sweep neither warns nor breaches it; the hold ends on time. A
hold on a lead without an SLA is audited and ends on time too. `reassign_no_candidate` events
carry the elapsed business time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from escalations import org_changes
from escalations.models import SlaPolicy, SlaTimer
from escalations.reassign import deactivate_rep, reassign_lead, revert_reassignment
from escalations.sweep import run_sweep
from leadops import lifecycle
from tests.conftest import berlin
from tests.factories import UserFactory, make_lead

WED_10 = berlin(2026, 12, 2, 10, 0)
HELD_AT = berlin(2026, 12, 2, 10, 20)  # 20 business minutes of the 1 h window used
CHANGED_AT = berlin(2026, 12, 2, 10, 40)
HOLD_ENDS = berlin(2026, 12, 7, 9, 0)  # Monday
FAR_LATER = berlin(2026, 12, 4, 17, 0)  # two business days on: every stage long past


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _open_timer(lead) -> SlaTimer:
    return SlaTimer.objects.get(lead=lead, completed_at__isnull=True)


def _stage_events(lead) -> list[str]:
    kinds = ("sla_warning", "sla_breach", "sla_breach_auto_reassign")
    return list(AuditEvent.objects.filter(lead=lead, kind__in=kinds).values_list("kind", flat=True))


@pytest.fixture
def held(org, policies):
    """Lena's NEW lead (1 h window from Wed 10:00), on hold from 10:20 until Monday 09:00."""
    with _at(WED_10):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(HELD_AT):
        lifecycle.put_on_hold(
            lead, actor=org.lena, reason="Customer at a fair", resume_at=HOLD_ENDS
        )
    return lead


def _assert_new_timer_still_held(lead, old_timer_pk):
    """The timer that the change started is paused like the hold; the sweep fires nothing on
    it until the hold ends; then the clock runs with the whole fresh window."""
    lead.refresh_from_db()
    assert lead.on_hold
    timer = _open_timer(lead)
    assert timer.pk != old_timer_pk, "the change should have started a new timer"
    assert timer.paused_at == CHANGED_AT, "the new timer's clock is running on a held lead"
    assert timer.resume_at == HOLD_ENDS and timer.next_fire_at == HOLD_ENDS
    paused = AuditEvent.objects.filter(lead=lead, kind="sla_paused", timer=timer).get()
    assert paused.details["carried_over"] is True
    with _at(FAR_LATER):
        result = run_sweep()
    assert (result.warned, result.breached, result.reassigned) == (0, 0, 0)
    assert _stage_events(lead) == []
    with _at(HOLD_ENDS + timedelta(minutes=1)):
        assert run_sweep().resumed == 1
    lead.refresh_from_db()
    timer.refresh_from_db()
    assert not lead.on_hold and timer.paused_at is None
    assert timer.due_at == HOLD_ENDS + timedelta(minutes=61)  # the whole hour, from the resume


def test_manual_reassignment_of_a_held_lead_starts_a_paused_timer(org, held):
    old = _open_timer(held).pk
    with _at(CHANGED_AT):
        reassign_lead(held, org.felix, cause="manual", actor=None)
    _assert_new_timer_still_held(held, old)


def test_revert_of_a_held_lead_starts_a_paused_timer(org, held):
    jonas = UserFactory(username="jonas")
    jonas.groups.add(Group.objects.get(name="Team leads"))
    org.jonas.user = jonas
    org.jonas.save()
    with _at(HELD_AT + timedelta(minutes=5)):
        reassignment = reassign_lead(held, org.felix, cause="manual", actor=None)
    old = _open_timer(held).pk
    with _at(CHANGED_AT):
        revert_reassignment(reassignment, actor=jonas, reason="Lena knows the customer")
    _assert_new_timer_still_held(held, old)


def test_policy_deactivation_fallback_on_a_held_lead_starts_a_paused_timer(org, policies, held):
    old = _open_timer(held)
    fallback = SlaPolicy.objects.create(state="NEW", market=org.de, window="1h")
    with _at(CHANGED_AT):
        org_changes.set_policy_active(old.policy, False, actor=None, reason="replaced")
    assert _open_timer(held).policy == fallback
    _assert_new_timer_still_held(held, old.pk)


def test_rep_hand_over_of_a_held_lead_starts_a_paused_timer(org, held):
    old = _open_timer(held).pk
    with _at(CHANGED_AT):
        result = deactivate_rep(org.lena, actor=None)
    assert result.reassigned == 1
    _assert_new_timer_still_held(held, old)


def test_hold_on_a_lead_without_sla_is_audited_and_ends_on_time(org, policies):
    with _at(WED_10):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        lifecycle.transition(lead, "CONTACTED", actor=org.lena)
        lifecycle.transition(lead, "QUALIFIED", actor=org.lena)
        lifecycle.transition(lead, "PROPOSAL", actor=org.lena)
        lifecycle.transition(lead, "NEGOTIATION", actor=org.lena)  # no policy: no SLA
    assert not SlaTimer.objects.filter(lead=lead, completed_at__isnull=True).exists()
    with _at(HELD_AT):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="Legal review", resume_at=HOLD_ENDS)
    paused = AuditEvent.objects.get(lead=lead, kind="sla_paused")
    assert paused.details["no_sla"] is True and paused.details["reason"] == "Legal review"
    with _at(HOLD_ENDS - timedelta(minutes=1)):
        assert run_sweep().resumed == 0
    lead.refresh_from_db()
    assert lead.on_hold
    with _at(HOLD_ENDS + timedelta(minutes=1)):
        assert run_sweep().resumed == 1
    lead.refresh_from_db()
    assert not lead.on_hold
    resumed = AuditEvent.objects.get(lead=lead, kind="sla_resumed")
    assert resumed.actor_name == "system" and resumed.details["no_sla"] is True


def test_no_candidate_from_the_sweep_carries_the_elapsed_business_time(org, policies):
    org.felix.capacity = 0
    org.felix.save()
    with _at(WED_10):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 11, 30)):  # 150 % of the hour
        assert run_sweep().no_candidate == 1
    event = AuditEvent.objects.get(lead=lead, kind="reassign_no_candidate")
    assert event.elapsed == timedelta(minutes=90)


def test_no_candidate_on_a_hand_over_carries_the_elapsed_business_time(org, policies):
    org.felix.capacity = 0
    org.felix.save()
    with _at(WED_10):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 25)):
        assert deactivate_rep(org.lena, actor=None).unassigned == 1
    event = AuditEvent.objects.get(lead=lead, kind="reassign_no_candidate")
    assert event.elapsed == timedelta(minutes=25)
