"""The lead lifecycle (SPEC §3): every allowed and refused move, the progress table, holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from escalations import receivers
from leadops import lifecycle
from leadops.lifecycle import (
    ALLOWED_TRANSITIONS,
    IllegalTransition,
    InvalidLeadInput,
    is_progress_transition,
)
from leadops.models import Activity, Lead, LeadState
from leadops.signals import lead_changed
from tests.conftest import berlin
from tests.factories import make_lead

S = LeadState
ALL_PAIRS = [(a, b) for a in S.values for b in S.values if a != b]
EXPECTED_ALLOWED = {
    ("NEW", "CONTACTED"),
    ("CONTACTED", "QUALIFIED"),
    ("QUALIFIED", "PROPOSAL"),
    ("PROPOSAL", "NEGOTIATION"),
    ("NEGOTIATION", "WON"),
    ("NEW", "LOST"),
    ("CONTACTED", "LOST"),
    ("QUALIFIED", "LOST"),
    ("PROPOSAL", "LOST"),
    ("NEGOTIATION", "LOST"),
    ("NEW", "UNQUALIFIED"),
    ("CONTACTED", "UNQUALIFIED"),
    ("QUALIFIED", "UNQUALIFIED"),
}


def _lead_in(state, org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    Lead.objects.filter(pk=lead.pk).update(state=state)
    lead.refresh_from_db()
    return lead


def test_transition_table_matches_the_spec():
    allowed = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert allowed == EXPECTED_ALLOWED


@pytest.mark.parametrize(("from_state", "to_state"), sorted(EXPECTED_ALLOWED))
def test_allowed_transition_moves_the_lead(org, from_state, to_state):
    lead = _lead_in(from_state, org)
    lifecycle.transition(lead, to_state, actor=org.lena, reason="because")
    lead.refresh_from_db()
    assert lead.state == to_state
    assert lead.history.first().history_change_reason.startswith(f"{from_state} → {to_state}")


@pytest.mark.parametrize(("from_state", "to_state"), sorted(set(ALL_PAIRS) - EXPECTED_ALLOWED))
def test_refused_transition_raises_and_changes_nothing(org, from_state, to_state):
    lead = _lead_in(from_state, org)
    history_before = lead.history.count()
    with pytest.raises(IllegalTransition, match=f"cannot move to {to_state}"):
        lifecycle.transition(lead, to_state, actor=org.lena, reason="because")
    lead.refresh_from_db()
    assert lead.state == from_state
    assert lead.history.count() == history_before


def test_unknown_state_is_bad_input_not_a_transition_error(org):
    lead = _lead_in("NEW", org)
    with pytest.raises(InvalidLeadInput) as err:
        lifecycle.transition(lead, "MAYBE", actor=None)
    assert err.value.field == "to_state"


def test_disqualification_needs_a_reason(org):
    lead = _lead_in("CONTACTED", org)
    with pytest.raises(InvalidLeadInput, match="reason"):
        lifecycle.transition(lead, "UNQUALIFIED", actor=org.lena)
    with pytest.raises(InvalidLeadInput, match="reason"):
        lifecycle.record_activity(lead, "disqualify", actor=org.lena)


@pytest.mark.parametrize("kind", ["call", "email", "message"])
def test_outbound_attempt_by_owner_moves_new_lead_to_contacted(org, kind):
    lead = _lead_in("NEW", org)
    activity = lifecycle.record_activity(lead, kind, actor=org.lena)
    lead.refresh_from_db()
    assert lead.state == "CONTACTED"
    assert activity.counted_as_progress


@pytest.mark.parametrize("kind", ["view", "note", "meeting"])
def test_view_note_or_meeting_never_counts_as_progress(org, kind):
    lead = _lead_in("NEW", org)
    activity = lifecycle.record_activity(lead, kind, actor=org.lena)
    lead.refresh_from_db()
    assert lead.state == "NEW"
    assert not activity.counted_as_progress


def test_outbound_attempt_by_someone_else_is_recorded_but_not_progress(org):
    lead = _lead_in("NEW", org)
    activity = lifecycle.record_activity(lead, "call", actor=org.felix)
    lead.refresh_from_db()
    assert lead.state == "NEW"
    assert not activity.counted_as_progress
    assert activity.actor == org.felix


def test_outbound_attempt_by_the_system_is_not_progress(org):
    lead = _lead_in("NEW", org)
    lifecycle.record_activity(lead, "email", actor=None)
    lead.refresh_from_db()
    assert lead.state == "NEW"


def test_disqualify_decision_in_new_moves_to_unqualified_as_progress(org):
    lead = _lead_in("NEW", org)
    activity = lifecycle.record_activity(lead, "disqualify", actor=org.lena, reason="Student")
    lead.refresh_from_db()
    assert lead.state == "UNQUALIFIED"
    assert activity.counted_as_progress


@pytest.mark.parametrize("state", ["CONTACTED", "QUALIFIED", "PROPOSAL", "NEGOTIATION"])
def test_outbound_attempts_after_new_do_not_change_state(org, state):
    lead = _lead_in(state, org)
    activity = lifecycle.record_activity(lead, "call", actor=org.lena)
    lead.refresh_from_db()
    assert lead.state == state
    assert not activity.counted_as_progress


@pytest.mark.parametrize(
    ("from_state", "to_state", "progress"),
    [
        ("NEW", "CONTACTED", False),  # NEW progresses by an outbound attempt, not a bare move
        ("NEW", "UNQUALIFIED", True),
        ("NEW", "LOST", False),
        ("CONTACTED", "QUALIFIED", True),
        ("CONTACTED", "UNQUALIFIED", True),
        ("CONTACTED", "LOST", False),
        ("QUALIFIED", "PROPOSAL", True),
        ("QUALIFIED", "UNQUALIFIED", False),
        ("QUALIFIED", "LOST", False),
        ("PROPOSAL", "NEGOTIATION", True),
        ("PROPOSAL", "LOST", True),
        ("NEGOTIATION", "WON", False),
        ("NEGOTIATION", "LOST", False),
    ],
)
def test_progress_table_for_transitions(from_state, to_state, progress):
    assert is_progress_transition(from_state, to_state) is progress


def test_disqualify_in_proposal_is_refused_with_a_hint(org):
    lead = _lead_in("PROPOSAL", org)
    with pytest.raises(IllegalTransition, match="mark it LOST"):
        lifecycle.record_activity(lead, "disqualify", actor=org.lena, reason="No budget")
    assert not Activity.objects.filter(lead=lead).exists()


def test_activity_in_the_future_is_refused(org):
    lead = _lead_in("NEW", org)
    with pytest.raises(InvalidLeadInput) as err:
        lifecycle.record_activity(
            lead, "call", actor=org.lena, occurred_at=timezone.now() + timedelta(hours=1)
        )
    assert err.value.field == "occurred_at"


def test_unknown_activity_kind_is_refused(org):
    lead = _lead_in("NEW", org)
    with pytest.raises(InvalidLeadInput, match="not an activity kind"):
        lifecycle.record_activity(lead, "fax", actor=org.lena)


def test_activity_records_who_when_it_occurred_and_when_recorded(org):
    with time_machine.travel(berlin(2026, 12, 2, 9, 0), tick=False):
        lead = _lead_in("NEW", org)
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        activity = lifecycle.record_activity(
            lead, "call", actor=org.lena, occurred_at=berlin(2026, 12, 2, 9, 40), notes="Left VM"
        )
    assert activity.actor_name == "Lena Hoffmann"
    assert activity.occurred_at == berlin(2026, 12, 2, 9, 40)
    assert activity.recorded_at == berlin(2026, 12, 2, 10, 0)


def test_create_lead_is_idempotent_by_external_id(org):
    first = make_lead(
        team=org.berlin_team, source=org.paid_social, owner=org.lena, external_id="crm-1"
    )
    second = make_lead(
        team=org.berlin_team,
        source=org.paid_social,
        owner=org.felix,
        external_id="crm-1",
        name="Someone else",
    )
    assert first.pk == second.pk
    assert Lead.objects.filter(external_id="crm-1").count() == 1


def test_get_or_create_lead_says_whether_it_created_or_found_the_lead(org):
    kwargs = {
        "name": "Aisha",
        "company": "Emirates Group",
        "market": org.de,
        "source": org.paid_social,
        "team": org.berlin_team,
        "owner": org.lena,
        "external_id": "crm-7",
    }
    first, created = lifecycle.get_or_create_lead(**kwargs)
    again, created_again = lifecycle.get_or_create_lead(**{**kwargs, "external_id": " crm-7 "})

    assert (created, created_again) == (True, False)
    assert again.pk == first.pk


def test_get_or_create_lead_without_external_id_always_creates(org):
    kwargs = {
        "name": "Aisha",
        "company": "",
        "market": org.de,
        "source": org.paid_social,
        "team": org.berlin_team,
    }
    results = [lifecycle.get_or_create_lead(**kwargs, external_id=e) for e in (None, "", "  ")]

    assert [created for _, created in results] == [True, True, True]
    assert Lead.objects.count() == 3


def test_activity_before_the_lead_existed_is_refused_and_records_nothing(org):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with (
        time_machine.travel(berlin(2026, 12, 2, 11, 0), tick=False),
        pytest.raises(InvalidLeadInput, match="before the lead was created") as err,
    ):
        lifecycle.record_activity(
            lead, "call", actor=org.lena, occurred_at=berlin(2026, 12, 2, 9, 59)
        )
    assert err.value.field == "occurred_at"
    lead.refresh_from_db()
    assert lead.state == "NEW" and not lead.activities.exists()


def test_create_lead_refuses_a_team_of_another_market(org):
    with pytest.raises(InvalidLeadInput) as err:
        lifecycle.create_lead(
            name="X", company="Y", market=org.india, source=org.paid_social, team=org.berlin_team
        )
    assert err.value.field == "team"
    assert not Lead.objects.exists()


def test_create_lead_refuses_an_owner_of_another_team(org):
    with pytest.raises(InvalidLeadInput) as err:
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.asha)
    assert err.value.field == "owner"


def test_create_lead_refuses_a_bad_email(org):
    with pytest.raises(InvalidLeadInput) as err:
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, email="nope")
    assert err.value.field == "email"
    assert not Lead.objects.exists()


def test_hold_and_resume_round_trip(org):
    lead = _lead_in("CONTACTED", org)
    lifecycle.put_on_hold(lead, actor=org.lena, reason="Customer travelling")
    lead.refresh_from_db()
    assert lead.on_hold and lead.hold_reason == "Customer travelling"
    with pytest.raises(IllegalTransition, match="already on hold"):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="again")
    lifecycle.resume(lead, actor=org.lena)
    lead.refresh_from_db()
    assert not lead.on_hold
    with pytest.raises(IllegalTransition, match="not on hold"):
        lifecycle.resume(lead, actor=org.lena)


def test_hold_needs_a_reason_and_a_future_resume_time(org):
    lead = _lead_in("NEW", org)
    with pytest.raises(InvalidLeadInput, match="reason"):
        lifecycle.put_on_hold(lead, actor=org.lena, reason=" ")
    with pytest.raises(InvalidLeadInput, match="future"):
        lifecycle.put_on_hold(
            lead, actor=org.lena, reason="x", resume_at=timezone.now() - timedelta(minutes=1)
        )


def test_closed_lead_cannot_be_put_on_hold(org):
    lead = _lead_in("WON", org)
    with pytest.raises(IllegalTransition, match="closed"):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="x")


def test_progress_ends_a_hold(org):
    lead = _lead_in("CONTACTED", org)
    lifecycle.put_on_hold(lead, actor=org.lena, reason="Waiting on budget")
    lifecycle.transition(lead, "QUALIFIED", actor=org.lena)
    lead.refresh_from_db()
    assert lead.state == "QUALIFIED" and not lead.on_hold


def test_verbs_accept_a_django_user_as_actor(org, django_user_model):
    user = django_user_model.objects.create_user("lena", password="x")
    org.lena.user = user
    org.lena.save()
    lead = _lead_in("NEW", org)
    activity = lifecycle.record_activity(lead, "call", actor=user)
    assert activity.actor == org.lena and activity.actor_user == user
    lead.refresh_from_db()
    assert lead.state == "CONTACTED"
    assert lead.history.first().history_user == user


# --- the announcement to the apps above (leadops.signals.lead_changed) ---------------------------


def test_every_change_is_announced_inside_the_leads_transaction(org, policies):
    from_signal = []

    def listener(sender, *, change, **kwargs):
        from_signal.append((change.kind, Lead.objects.filter(pk=change.lead.pk).exists()))

    lead_changed.connect(listener, dispatch_uid="test-listener")
    try:
        with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
            lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
            lifecycle.put_on_hold(lead, actor=org.lena, reason="customer on holiday")
            lifecycle.resume(lead, actor=org.lena)
            lifecycle.record_activity(lead, "call", actor=org.lena)
    finally:
        lead_changed.disconnect(dispatch_uid="test-listener")

    assert [kind for kind, _ in from_signal] == ["created", "held", "resumed", "state_changed"]
    assert all(saved for _, saved in from_signal)  # the lead row exists: same transaction


def test_a_lifecycle_with_nobody_listening_refuses_instead_of_silently_running_without_sla(
    org, policies
):
    lead_changed.disconnect(dispatch_uid="escalations.lead_changed")
    try:
        with pytest.raises(ImproperlyConfigured, match="nothing listens"):
            make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    finally:
        lead_changed.connect(receivers.lead_changed, dispatch_uid="escalations.lead_changed")

    assert not Lead.objects.exists()  # the failed announcement rolled the lead back
