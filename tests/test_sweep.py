"""Timers and the sweep (SPEC §4, §6): stages at business instants, once and in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from audit.models import AuditEvent
from escalations import sweep
from escalations.models import Notification, SlaPolicy, SlaTimer
from escalations.sweep import run_sweep
from escalations.timers import deactivate_policy, replan_market, replan_timers
from leadops import lifecycle
from tests.conftest import berlin, kolkata
from tests.factories import RepFactory, make_lead


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _timer(lead) -> SlaTimer:
    return SlaTimer.objects.get(lead=lead, completed_at__isnull=True)


def _kinds(lead) -> list[str]:
    return list(AuditEvent.objects.filter(lead=lead).order_by("id").values_list("kind", flat=True))


def test_berlin_stages_are_planned_at_80_100_150_percent_of_business_time(org, policies):
    # Wed 17:30, 1 h window, 09:00-18:00: 30 min today, the rest on Thursday morning.
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    timer = _timer(lead)
    assert (timer.policy_version, timer.window, timer.owner) == (1, "1h", org.lena)
    assert timer.warn_at == berlin(2026, 12, 3, 9, 18)
    assert timer.due_at == berlin(2026, 12, 3, 9, 30)
    assert timer.reassign_at == berlin(2026, 12, 3, 10, 0)
    assert timer.next_fire_at == timer.warn_at


def test_berlin_stages_fire_once_at_their_instants(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    assert run_sweep(now=berlin(2026, 12, 3, 9, 17, 59)).claimed == 0
    first = run_sweep(now=berlin(2026, 12, 3, 9, 18))
    assert (first.warned, first.breached) == (1, 0)
    assert run_sweep(now=berlin(2026, 12, 3, 9, 29)).claimed == 0
    assert run_sweep(now=berlin(2026, 12, 3, 9, 30)).breached == 1
    with _at(berlin(2026, 12, 3, 10, 0)):
        third = run_sweep()
    assert third.reassigned == 1
    assert _kinds(lead) == ["sla_warning", "sla_breach", "sla_breach_auto_reassign"]
    lead.refresh_from_db()
    assert lead.owner == org.felix
    # Sweeping again fires nothing more.
    assert run_sweep(now=berlin(2026, 12, 3, 10, 5)).claimed == 0


def test_india_window_runs_across_the_weekend(org, policies):
    # Fri 17:00 IST, inbound web 2 h, 09:30-18:30: 90 min on Friday, 30 min on Monday.
    with _at(kolkata(2026, 12, 4, 17, 0)):
        lead = make_lead(
            team=org.india_team,
            source=org.inbound_web,
            owner=org.asha,
            name="Kavya Reddy",
            company="Zomato",
        )
    timer = _timer(lead)
    assert timer.window == "2h"
    assert timer.warn_at == kolkata(2026, 12, 7, 9, 36)
    assert timer.due_at == kolkata(2026, 12, 7, 10, 0)
    assert timer.reassign_at == kolkata(2026, 12, 7, 11, 0)
    assert run_sweep(now=kolkata(2026, 12, 6, 23, 59)).claimed == 0  # Sunday: nothing due
    assert run_sweep(now=kolkata(2026, 12, 7, 9, 36)).warned == 1


def test_holiday_on_friday_pushes_the_deadline_to_monday(org, policies):
    # Thu 24 Dec 17:30; Christmas Fri 25 and the weekend are closed in Berlin.
    with _at(berlin(2026, 12, 24, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    assert _timer(lead).due_at == berlin(2026, 12, 28, 9, 30)


def test_late_sweep_fires_stages_in_order_and_supersedes_the_warning(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    result = run_sweep(now=berlin(2026, 12, 3, 9, 45))  # the sweeper was down since 09:00
    assert (result.warned, result.breached, result.superseded) == (1, 1, 1)
    warning, breach = AuditEvent.objects.filter(lead=lead).order_by("id")
    assert (warning.kind, breach.kind) == ("sla_warning", "sla_breach")
    assert warning.stage_due_at == berlin(2026, 12, 3, 9, 18)
    assert warning.occurred_at == berlin(2026, 12, 3, 9, 45)
    assert warning.details["superseded"] is True and breach.details["superseded"] is False
    assert warning.details["late_by_seconds"] == 27 * 60
    statuses = dict(Notification.objects.filter(lead=lead).values_list("kind", "status"))
    assert statuses == {"warning": "superseded", "breach": "pending"}
    assert _timer(lead).stage == "breached"


def test_stage_audit_carries_policy_version_thresholds_window_elapsed_and_due(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 3, 9, 18))
    event = AuditEvent.objects.get(lead=lead, kind="sla_warning")
    assert event.actor_name == "system" and event.actor_user is None
    assert event.owner == org.lena and event.owner_name == "Lena Hoffmann"
    assert (event.policy_id, event.policy_version) == (policies["NEW"].pk, 1)
    assert event.thresholds == {"warn": 80, "breach": 100, "reassign": 150, "version": 1}
    assert event.window == "1h"
    assert event.elapsed == timedelta(minutes=48)
    assert event.stage_due_at == berlin(2026, 12, 3, 9, 18)
    assert event.details["fired_at"] == berlin(2026, 12, 3, 9, 18).isoformat()
    assert event.correlation_id.startswith("sweep-")


def test_warning_goes_to_the_owner_and_breach_to_the_manager(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 2, 10, 48))
    run_sweep(now=berlin(2026, 12, 2, 11, 0))
    rows = Notification.objects.filter(lead=lead).order_by("id")
    assert [(n.kind, n.persona, n.recipient) for n in rows] == [
        ("warning", "owner", org.lena),
        ("breach", "manager", org.katrin),
    ]
    assert rows[0].dedupe_key.endswith(":warned:owner")


def test_owner_warning_outside_their_hours_waits_for_their_next_working_period(org, policies):
    org.lena.hours = {d: ["12:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    org.lena.save()
    with _at(berlin(2026, 12, 2, 9, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 2, 9, 48))
    warning = Notification.objects.get(lead=lead)
    assert warning.status == "pending"
    assert warning.next_attempt_at == berlin(2026, 12, 2, 12, 0)
    # The audit shows when the stage fired, not when the message goes out.
    assert AuditEvent.objects.get(lead=lead).occurred_at == berlin(2026, 12, 2, 9, 48)


def test_held_warning_is_superseded_when_the_breach_fires_first(org, policies):
    org.lena.hours = {d: ["12:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    org.lena.save()
    with _at(berlin(2026, 12, 2, 9, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 2, 9, 48))
    run_sweep(now=berlin(2026, 12, 2, 10, 0))
    statuses = dict(Notification.objects.filter(lead=lead).values_list("kind", "status"))
    assert statuses == {"warning": "superseded", "breach": "pending"}


def test_progress_completes_the_timer_and_starts_the_next_states_timer(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 40)):
        lifecycle.record_activity(lead, "call", actor=org.lena)
    done = SlaTimer.objects.get(lead=lead, state="NEW")
    assert (done.outcome, done.completed_at) == ("met", berlin(2026, 12, 2, 10, 40))
    contacted = _timer(lead)
    assert contacted.state == "CONTACTED" and contacted.window == "24h"
    assert contacted.started_at == berlin(2026, 12, 2, 10, 40)
    # 24 business hours of 9 a day: 7h20 left on Wednesday, 9h Thursday, 7h40 into Friday.
    assert contacted.due_at == berlin(2026, 12, 4, 16, 40)
    assert "progress_recorded" in _kinds(lead) and "sla_met" in _kinds(lead)
    assert run_sweep(now=berlin(2026, 12, 2, 11, 0)).claimed == 0  # nothing left of NEW


@pytest.mark.parametrize("kind", ["view", "note", "meeting"])
def test_view_note_or_meeting_does_not_reset_the_timer(org, policies, kind):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    before = _timer(lead)
    with _at(berlin(2026, 12, 2, 10, 40)):
        lifecycle.record_activity(lead, kind, actor=org.lena)
    after = _timer(lead)
    assert after.pk == before.pk and after.due_at == before.due_at
    assert run_sweep(now=berlin(2026, 12, 2, 11, 0)).breached == 1


def test_call_by_someone_other_than_the_owner_does_not_reset_the_timer(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        lifecycle.record_activity(lead, "call", actor=org.felix)
    assert _timer(lead).state == "NEW"


def test_progress_after_the_breach_is_met_late(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    run_sweep(now=berlin(2026, 12, 2, 11, 5))
    with _at(berlin(2026, 12, 2, 11, 10)):
        lifecycle.record_activity(lead, "email", actor=org.lena)
    assert SlaTimer.objects.get(lead=lead, state="NEW").outcome == "met_late"


def test_call_that_happened_before_the_deadline_but_was_logged_after_is_met(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 11, 20)):
        lifecycle.record_activity(
            lead, "call", actor=org.lena, occurred_at=berlin(2026, 12, 2, 10, 50)
        )
    assert SlaTimer.objects.get(lead=lead, state="NEW").outcome == "met"


def test_hold_and_resume_neither_lose_nor_leak_business_time(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 20)):  # 20 business minutes used
        lifecycle.put_on_hold(lead, actor=org.lena, reason="Customer at a fair")
    paused = _timer(lead)
    assert paused.paused_at == berlin(2026, 12, 2, 10, 20) and paused.next_fire_at is None
    assert paused.consumed == timedelta(minutes=20)
    assert run_sweep(now=berlin(2026, 12, 3, 12, 0)).claimed == 0  # nothing fires on hold
    with _at(berlin(2026, 12, 3, 17, 30)):  # 40 minutes left: 30 today, 10 tomorrow
        lifecycle.resume(lead, actor=org.lena)
    resumed = _timer(lead)
    assert resumed.pk == paused.pk
    assert resumed.warn_at == berlin(2026, 12, 3, 17, 58)
    assert resumed.due_at == berlin(2026, 12, 4, 9, 10)
    assert resumed.reassign_at == berlin(2026, 12, 4, 9, 40)
    assert resumed.paused_total == timedelta(hours=31, minutes=10)
    assert _kinds(lead)[-2:] == ["sla_paused", "sla_resumed"]
    run_sweep(now=berlin(2026, 12, 4, 9, 10))
    assert AuditEvent.objects.get(lead=lead, kind="sla_breach").elapsed == timedelta(hours=1)


def test_hold_with_a_resume_time_is_resumed_by_the_sweep(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 30)):
        lifecycle.put_on_hold(
            lead, actor=org.lena, reason="Call back tomorrow", resume_at=berlin(2026, 12, 3, 14, 0)
        )
    assert _timer(lead).next_fire_at == berlin(2026, 12, 3, 14, 0)
    with _at(berlin(2026, 12, 3, 14, 1)):
        assert run_sweep().resumed == 1
    lead.refresh_from_db()
    timer = _timer(lead)
    assert not lead.on_hold and timer.paused_at is None
    assert timer.due_at == berlin(2026, 12, 3, 14, 31)
    resumed = AuditEvent.objects.get(lead=lead, kind="sla_resumed")
    assert resumed.actor_name == "system"


def test_progress_on_a_held_lead_resumes_and_completes_its_timer(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with _at(berlin(2026, 12, 2, 10, 30)):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="Waiting")
    with _at(berlin(2026, 12, 8, 10, 0)):
        lifecycle.record_activity(lead, "call", actor=org.lena)
    done = SlaTimer.objects.get(lead=lead, state="NEW")
    assert done.outcome == "met"  # 30 business minutes used of 60
    assert _kinds(lead).count("sla_resumed") == 1


def test_policy_edit_does_not_change_a_running_timers_version(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    policy = policies["NEW"]
    policy.window = "3h"
    policy.save()
    assert policy.version == 2
    timer = _timer(lead)
    assert (timer.policy_version, timer.window) == (1, "1h")
    run_sweep(now=berlin(2026, 12, 2, 11, 0))
    assert AuditEvent.objects.get(lead=lead, kind="sla_breach").policy_version == 1
    with _at(berlin(2026, 12, 2, 12, 0)):
        newer = make_lead(
            team=org.berlin_team, source=org.paid_social, owner=org.felix, name="Lukas Schmidt"
        )
    assert (_timer(newer).policy_version, _timer(newer).window) == (2, "3h")


def test_replan_moves_chosen_timers_to_the_current_policy_version(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    policies["NEW"].window = "2h"
    policies["NEW"].save()
    with _at(berlin(2026, 12, 2, 10, 30)):
        assert (
            replan_timers(SlaTimer.objects.filter(lead=lead), actor=None, reason="window widened")
            == 1
        )
    timer = _timer(lead)
    assert (timer.policy_version, timer.window) == (2, "2h")
    assert timer.due_at == berlin(2026, 12, 2, 12, 0)  # the 30 minutes used still count
    assert AuditEvent.objects.filter(lead=lead, kind="sla_replanned").count() == 1


def test_deactivating_a_policy_cancels_its_timers_and_starts_the_fallback(org, policies):
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena)
    inbound = policies["NEW/inbound_web"]
    assert _timer(lead).policy == inbound
    inbound.active = False
    inbound.save()
    with _at(berlin(2026, 12, 2, 10, 30)):
        assert deactivate_policy(inbound, actor=None, reason="merged into default") == 1
    cancelled = SlaTimer.objects.get(lead=lead, policy=inbound)
    assert cancelled.outcome == "cancelled"
    fallback = _timer(lead)
    assert fallback.policy == policies["NEW"] and fallback.started_at == berlin(2026, 12, 2, 10, 30)
    assert run_sweep(now=berlin(2026, 12, 2, 11, 45)).breached == 1  # only the fallback fires
    assert AuditEvent.objects.filter(lead=lead, kind="sla_cancelled").count() == 1


def test_market_calendar_change_replans_open_timers(org, policies):
    with _at(berlin(2026, 12, 2, 17, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    assert _timer(lead).due_at == berlin(2026, 12, 3, 9, 30)
    org.de.extra_closed_dates = ["2026-12-03"]  # Thursday becomes a closed day
    org.de.save()
    with _at(berlin(2026, 12, 2, 17, 45)):
        assert replan_market(org.de, actor=None, reason="office closed") == 1
    assert _timer(lead).due_at == berlin(2026, 12, 4, 9, 30)


def test_lead_without_a_matching_policy_has_no_timer(org, policies):
    SlaPolicy.objects.filter(state="NEW").delete()
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    assert not SlaTimer.objects.filter(lead=lead).exists()


def test_closed_state_ends_the_timer_without_starting_another(org, policies):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    lifecycle.transition(lead, "LOST", actor=org.lena, reason="Went with a competitor")
    assert not SlaTimer.objects.filter(lead=lead, completed_at__isnull=True).exists()
    assert SlaTimer.objects.get(lead=lead).outcome == "cancelled"


def test_failing_lead_is_pushed_forward_and_the_batch_goes_on(org, policies, monkeypatch):
    with _at(berlin(2026, 12, 2, 10, 0)):
        bad = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
        good = make_lead(
            team=org.berlin_team, source=org.paid_social, owner=org.felix, name="Lukas Schmidt"
        )
    real = sweep._stage_message

    def explode(timer, *args, **kwargs):
        if timer.lead_id == bad.pk:
            raise RuntimeError("template exploded")
        return real(timer, *args, **kwargs)

    monkeypatch.setattr(sweep, "_stage_message", explode)
    result = run_sweep(now=berlin(2026, 12, 2, 10, 48))
    assert (result.warned, result.errors) == (1, 1)
    broken = _timer(bad)
    assert broken.error_count == 1 and "template exploded" in broken.last_error
    assert broken.next_fire_at == berlin(2026, 12, 2, 11, 3)
    assert broken.stage == "pending"
    assert not AuditEvent.objects.filter(lead=bad).exclude(kind="lead_assigned").exists()
    assert _timer(good).stage == "warned"


def test_sweep_query_count_does_not_grow_with_due_timers(
    org, policies, django_assert_max_num_queries
):
    def sweep_of(n, day):
        with _at(berlin(2026, 12, day, 10, 0)):
            leads = [
                make_lead(
                    team=org.berlin_team,
                    source=org.paid_social,
                    owner=RepFactory(team=org.berlin_team, capacity=100),
                    name=f"Lead {day}-{i}",
                )
                for i in range(n)
            ]
        # claim, org lookups (teams, markets, sources, owners, managers), one UPDATE per stage,
        # audit and outbox inserts (COPY + staging on PostgreSQL), savepoint: a constant.
        with django_assert_max_num_queries(14) as ctx:
            result = run_sweep(now=berlin(2026, 12, day, 10, 50), batch_size=500)
        assert result.warned == n
        for lead in leads:  # out of the way of the next measurement
            lifecycle.transition(lead, "LOST", actor=None)
        return len(ctx.captured_queries)

    # Both sizes take the same insert path (COPY on PostgreSQL above 20 rows) and stay under
    # SQLite's 999 parameters per INSERT, which would split the statement.
    assert sweep_of(25, 2) == sweep_of(45, 3)


def test_idle_sweep_is_two_index_selects_and_the_record_of_its_run(
    org, policies, django_assert_num_queries
):
    with _at(berlin(2026, 12, 2, 10, 0)):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    # The holds due to end (partial index `lead_hold_due`), then SAVEPOINT, the SELECT of due
    # timers on their index, RELEASE; the INSERT of the run (status block, healthz).
    with django_assert_num_queries(5):
        assert run_sweep(now=berlin(2026, 12, 2, 10, 1)).claimed == 0


def test_escalate_command_runs_one_sweep_at_the_given_instant(org, policies, capsys):
    with _at(berlin(2026, 12, 2, 10, 0)):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    call_command("escalate", "--now", "2026-12-02T10:00:00Z")  # 11:00 in Berlin
    assert "1 warned, 1 breached" in capsys.readouterr().out


def test_escalate_command_refuses_a_naive_instant(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="UTC offset"):
        call_command("escalate", "--now", "2026-12-02T10:00:00")


def test_window_across_the_us_spring_forward_weekend_ends_at_the_right_local_time(org, policies):
    from zoneinfo import ZoneInfo

    from tests.factories import MarketFactory, TeamFactory

    new_york = ZoneInfo("America/New_York")
    us = MarketFactory(
        code="US",
        timezone="America/New_York",
        hours={d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    team = TeamFactory(slug="us-east", market=us)
    rep = RepFactory(team=team, name="Jordan Lee")
    # Friday 16:30 EST; clocks spring forward on Sunday 14 March 2027.
    with _at(datetime(2027, 3, 12, 16, 30, tzinfo=new_york)):
        lead = make_lead(team=team, source=org.paid_social, owner=rep)
    timer = _timer(lead)
    assert timer.due_at == datetime(2027, 3, 15, 9, 30, tzinfo=new_york)
    assert timer.due_at == datetime(2027, 3, 15, 13, 30, tzinfo=UTC)  # EDT: UTC-4, not -5
    assert run_sweep(now=datetime(2027, 3, 15, 13, 29, tzinfo=UTC)).breached == 0
    assert run_sweep(now=datetime(2027, 3, 15, 13, 30, tzinfo=UTC)).breached == 1


def test_window_on_the_berlin_fall_back_sunday_counts_wall_clock_hours_once(org, policies):
    SlaPolicy.objects.filter(state="NEW", source__isnull=True).update(clock="calendar")
    # 01:30 CEST on 31 October 2027; at 03:00 clocks go back to 02:00 (a 25-hour day).
    with _at(berlin(2027, 10, 31, 1, 30)):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    timer = _timer(lead)
    assert timer.clock == "calendar"
    assert timer.due_at - timer.started_at == timedelta(hours=1)  # real time, not wall time


def test_one_sweep_batch_wakes_delivery_once(org, policies, django_capture_on_commit_callbacks):
    with _at(berlin(2026, 12, 2, 10, 0)):
        for i in range(3):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
    with django_capture_on_commit_callbacks() as callbacks, _at(berlin(2026, 12, 2, 11, 30)):
        result = run_sweep()
    assert result.reassigned == 3
    assert len(callbacks) == 1


def test_replan_onto_a_wall_clock_policy_keeps_the_business_time_already_used(org, policies):
    with _at(berlin(2026, 12, 4, 17, 30)):  # Friday: 30 business minutes left today
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    policies["NEW"].clock = "calendar"
    policies["NEW"].save()
    with _at(berlin(2026, 12, 4, 18, 30)):  # 30 business minutes used, an hour of wall time
        replan_timers(SlaTimer.objects.filter(lead=lead), actor=None, reason="24/7 desk")
    timer = _timer(lead)
    assert timer.clock == "calendar" and timer.consumed == timedelta(minutes=30)
    assert timer.due_at == berlin(2026, 12, 4, 19, 0)


def test_a_batch_that_falls_back_to_lead_by_lead_is_counted_as_an_error(
    org, policies, monkeypatch, caplog
):
    with _at(berlin(2026, 12, 2, 10, 0)):
        for name in ("A", "B"):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=name)
    real = sweep.reassign.reassign_due

    def deadlocked_batch(timers, **kwargs):
        if len(timers) > 1:  # the whole batch fails (as a deadlock victim would); one by one works
            raise RuntimeError("deadlock detected")
        return real(timers, **kwargs)

    monkeypatch.setattr(sweep.reassign, "reassign_due", deadlocked_batch)
    with caplog.at_level("INFO", logger="escalations.sweep"):
        result = run_sweep(now=berlin(2026, 12, 2, 11, 31))

    assert (result.reassigned, result.fallbacks, result.errors) == (2, 1, 1)
    assert "1 errors (1 batch(es) failed and retried lead by lead)" in result.summary()
    assert "0 errors" not in caplog.text
