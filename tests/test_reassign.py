"""Auto-reassignment safeguards (SPEC §7), the fair pick, the limit, the no-candidate path,
rep deactivation and the team lead's revert."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group

from audit.models import AuditEvent
from escalations.models import Notification, Reassignment, SlaTimer
from escalations.permissions import NotAllowed
from escalations.reassign import (
    ReassignError,
    deactivate_rep,
    find_candidate,
    reassign_lead,
    revert_reassignment,
)
from escalations.sweep import run_sweep
from leadops import lifecycle
from leadops.models import Lead
from teams.models import Role, TimeOff
from tests.conftest import berlin
from tests.factories import RepFactory, TeamFactory, UserFactory, make_lead

WED_10 = berlin(2026, 12, 2, 10, 0)
REASSIGN_AT = berlin(2026, 12, 2, 11, 30)  # 150 % of a 1 h window from 10:00


def _at(moment):
    return time_machine.travel(moment, tick=False)


def _lead(org, owner=None, name="Aisha Al-Mansoori", at=WED_10):
    with _at(at):
        return make_lead(
            team=org.berlin_team, source=org.paid_social, owner=owner or org.lena, name=name
        )


def _give(rep, n, org):
    """Give `rep` n open leads (their load)."""
    for i in range(n):
        Lead.objects.create(
            name=f"load {rep.pk}-{i}",
            market=org.de,
            source=org.paid_social,
            team=org.berlin_team,
            owner=rep,
        )


def _reason(search, rep):
    return search.reasons()[rep.pk]


# --- each safeguard deciding alone ------------------------------------------------------------


def test_earlier_owner_now_on_another_team_is_passed_over_as_other_team(org, policies):
    munich = TeamFactory(slug="de-munich", market=org.de)
    max_bauer = RepFactory(team=munich, name="Max Bauer")
    org.felix.active = False
    org.felix.save()
    lead = _lead(org)
    search = find_candidate(lead, WED_10, previous_owner_ids=[max_bauer.pk])
    assert search.chosen is None  # free, in hours, under capacity: but not on this team
    assert _reason(search, max_bauer) == "other_team"


def test_reps_of_other_teams_are_never_chosen(org, policies):
    munich = TeamFactory(slug="de-munich", market=org.de)
    RepFactory(team=munich, name="Max Bauer")
    org.felix.active = False
    org.felix.save()
    assert find_candidate(_lead(org), WED_10).chosen is None


def test_inactive_rep_is_passed_over(org, policies):
    org.felix.active = False
    org.felix.save()
    search = find_candidate(_lead(org), WED_10)
    assert search.chosen is None and _reason(search, org.felix) == "inactive"


def test_current_owner_is_never_the_candidate(org, policies):
    search = find_candidate(_lead(org), WED_10)
    assert _reason(search, org.lena) == "current_owner"
    assert search.chosen == org.felix


def test_rep_outside_their_own_working_hours_is_passed_over(org, policies):
    # Felix works 14:00-22:00 in New York's zone: 10:00 Berlin is 04:00 there.
    org.felix.hours = {d: ["14:00-22:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    org.felix.timezone = "America/New_York"
    org.felix.save()
    search = find_candidate(_lead(org), WED_10)
    assert search.chosen is None and _reason(search, org.felix) == "off_hours"
    assert (
        find_candidate(
            _lead(org, name="later", at=berlin(2026, 12, 2, 20, 30)), berlin(2026, 12, 2, 20, 30)
        ).chosen
        == org.felix
    )


def test_rep_on_pto_is_passed_over(org, policies):
    TimeOff.objects.create(
        rep=org.felix,
        start=berlin(2026, 12, 1, 0, 0),
        end=berlin(2026, 12, 3, 0, 0),
        reason="Vacation",
    )
    search = find_candidate(_lead(org), WED_10)
    assert search.chosen is None and _reason(search, org.felix) == "on_pto"
    # PTO ends at midnight: the next morning Felix is back.
    assert find_candidate(_lead(org, name="x"), berlin(2026, 12, 3, 9, 0)).chosen == org.felix


def test_rep_at_capacity_is_passed_over(org, policies):
    org.felix.capacity = 2
    org.felix.save()
    _give(org.felix, 2, org)
    search = find_candidate(_lead(org), WED_10)
    assert search.chosen is None and _reason(search, org.felix) == "at_capacity"
    entry = next(e for e in search.considered if e["rep_id"] == org.felix.pk)
    assert (entry["load"], entry["capacity"]) == (2, 2)


def test_manager_does_not_take_leads(org, policies):
    search = find_candidate(_lead(org), WED_10)
    assert _reason(search, org.katrin) == "manager"


def test_earlier_owner_of_the_episode_is_avoided_when_someone_else_is_free(org, policies):
    marie = RepFactory(team=org.berlin_team, name="Marie Weber")
    _give(marie, 3, org)  # more loaded than Felix, but not an earlier owner
    lead = _lead(org)
    search = find_candidate(lead, WED_10, previous_owner_ids=[org.felix.pk])
    assert search.chosen == marie
    assert _reason(search, org.felix) == "previous_owner"
    # With nobody else free, an earlier owner is better than nobody.
    marie.active = False
    marie.save()
    assert find_candidate(lead, WED_10, previous_owner_ids=[org.felix.pk]).chosen == org.felix


# --- the fair pick ---------------------------------------------------------------------------


def test_fair_pick_prefers_the_least_loaded_then_the_longest_since_last_assignment(org, policies):
    marie = RepFactory(team=org.berlin_team, name="Marie Weber")
    _give(org.felix, 1, org)
    lead = _lead(org)
    assert find_candidate(lead, WED_10).chosen == marie  # 0 open leads against 1
    _give(marie, 1, org)
    org.felix.last_assigned_at = WED_10 - timedelta(hours=1)
    marie.last_assigned_at = WED_10 - timedelta(hours=3)
    org.felix.save()
    marie.save()
    assert find_candidate(lead, WED_10).chosen == marie  # same load, waited longer
    marie.last_assigned_at = WED_10 - timedelta(minutes=5)
    marie.save()
    assert find_candidate(lead, WED_10).chosen == org.felix


# --- the 150 % stage through the sweep -------------------------------------------------------


def test_auto_reassignment_audits_rule_version_and_starts_a_fresh_window(org, policies):
    lead = _lead(org)
    with _at(REASSIGN_AT):
        result = run_sweep()
    assert (result.warned, result.breached, result.reassigned) == (1, 1, 1)
    lead.refresh_from_db()
    assert lead.owner == org.felix
    event = AuditEvent.objects.get(lead=lead, kind="sla_breach_auto_reassign")
    assert event.owner == org.lena  # the owner it was taken from
    assert event.details["to_rep"] == "Felix Wagner"
    assert event.details["rule_version"] == {"policy_version": 1, "thresholds_version": 1}
    assert event.policy_version == 1 and event.stage_due_at == REASSIGN_AT
    reasons = {c["name"]: c["reason"] for c in event.details["candidates"]}
    assert reasons["Lena Hoffmann"] == "current_owner" and reasons["Felix Wagner"] is None
    reassignment = Reassignment.objects.get(lead=lead)
    assert (reassignment.cause, reassignment.from_rep, reassignment.to_rep) == (
        "sla",
        org.lena,
        org.felix,
    )
    old, new = SlaTimer.objects.filter(lead=lead).order_by("id")
    assert (old.outcome, old.stage) == ("reassigned", "reassigned")
    assert new.owner == org.felix and new.started_at == REASSIGN_AT
    assert new.due_at == REASSIGN_AT + timedelta(hours=1)
    assert new.episode == old.episode and new.episode_owner_ids == [org.lena.pk]
    assert new.auto_reassign_count == 1
    history = lead.history.first()
    assert history.owner_id == org.felix.pk and "reassigned (sla)" in history.history_change_reason
    personas = set(
        Notification.objects.filter(lead=lead, kind__startswith="reassigned").values_list(
            "persona", flat=True
        )
    )
    assert personas == {"old_owner", "new_owner", "manager"}


def test_reassignment_stops_after_two_per_lead_per_state(org, policies):
    marie = RepFactory(team=org.berlin_team, name="Marie Weber")
    lead = _lead(org)
    with _at(REASSIGN_AT):
        run_sweep()  # Lena -> Felix (or Marie)
    with _at(REASSIGN_AT + timedelta(minutes=90)):
        run_sweep()  # -> the one who has not had it
    with _at(REASSIGN_AT + timedelta(minutes=180)):
        result = run_sweep()
    assert result.limit_reached == 1 and result.reassigned == 0
    owners = [r.to_rep for r in Reassignment.objects.filter(lead=lead).order_by("at")]
    assert set(owners) == {org.felix, marie}
    assert AuditEvent.objects.filter(lead=lead, kind="reassign_limit_reached").count() == 1
    assert (
        Notification.objects.filter(lead=lead, kind="limit_reached", persona="manager").count() == 1
    )
    with _at(REASSIGN_AT + timedelta(hours=8)):
        assert run_sweep().claimed == 0  # nothing repeats


def test_no_candidate_is_recorded_once_and_retried_later(org, policies):
    org.felix.capacity = 0
    org.felix.save()
    lead = _lead(org)
    with _at(REASSIGN_AT):
        assert run_sweep().no_candidate == 1
    timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)
    assert timer.next_fire_at == REASSIGN_AT + timedelta(minutes=10)
    with _at(REASSIGN_AT + timedelta(minutes=10)):
        assert run_sweep().no_candidate == 1  # retried...
    assert AuditEvent.objects.filter(lead=lead, kind="reassign_no_candidate").count() == 1
    assert Notification.objects.filter(lead=lead, kind="no_candidate").count() == 1  # ...quietly
    org.felix.capacity = 10
    org.felix.save()
    with _at(REASSIGN_AT + timedelta(minutes=20)):
        assert run_sweep().reassigned == 1
    lead.refresh_from_db()
    assert lead.owner == org.felix


# --- capacity and rep deactivation -----------------------------------------------------------


def test_rep_made_inactive_hands_over_open_leads(org, policies):
    first = _lead(org)
    second = _lead(org, name="Lukas Schmidt")
    closed = _lead(org, name="Anna Müller")

    lifecycle.transition(closed, "LOST", actor=None)
    org.felix.capacity = 1
    org.felix.save()
    with _at(berlin(2026, 12, 2, 10, 15)):
        handed = deactivate_rep(org.lena, actor=None)
    assert (handed.reassigned, handed.unassigned) == (1, 1)
    first.refresh_from_db(), second.refresh_from_db(), closed.refresh_from_db()
    assert {first.owner, second.owner} == {org.felix, None}
    assert closed.owner == org.lena  # closed leads stay as they were
    assert Reassignment.objects.get().cause == "rep_inactive"
    org.lena.refresh_from_db()
    assert not org.lena.active
    assert (
        AuditEvent.objects.filter(
            kind="reassign_no_candidate", details__cause="rep_inactive"
        ).count()
        == 1
    )


def test_manual_reassignment_checks_the_team_and_the_rep(org, policies):
    lead = _lead(org)
    with pytest.raises(ReassignError, match="not on team"):
        reassign_lead(lead, org.asha, cause="manual", actor=None)
    with pytest.raises(ReassignError, match="already owns"):
        reassign_lead(lead, org.lena, cause="manual", actor=None)
    reassign_lead(lead, org.felix, cause="manual", actor=None)
    assert (
        AuditEvent.objects.filter(lead=lead, kind="lead_assigned", details__cause="manual").count()
        == 1
    )


def test_new_lead_without_owner_is_routed_to_an_available_rep(org, policies):
    with _at(WED_10):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=None)
    assert lead.owner in (org.lena, org.felix)
    assert SlaTimer.objects.get(lead=lead).owner == lead.owner


def test_new_lead_nobody_can_take_stays_unowned_and_the_manager_is_told(org, policies):
    with _at(berlin(2026, 12, 5, 10, 0)):  # a Saturday
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=None)
    assert lead.owner is None
    assert Notification.objects.get(lead=lead).kind == "unassigned"


# --- revert --------------------------------------------------------------------------------


@pytest.fixture
def reassigned(org, policies):
    lead = _lead(org)
    with _at(REASSIGN_AT):
        run_sweep()
    return Reassignment.objects.get(lead=lead)


def _user_for(rep):
    user = UserFactory(username=rep.email.split("@")[0])
    rep.user = user
    rep.save()
    return user


def test_team_lead_reverts_and_the_original_owner_gets_a_fresh_window(org, reassigned):
    jonas = _user_for(org.jonas)
    later = REASSIGN_AT + timedelta(minutes=20)
    with _at(later):
        revert_reassignment(reassigned, actor=jonas, reason="Lena was on a customer call")
    lead = Lead.objects.get(pk=reassigned.lead_id)
    assert lead.owner == org.lena
    reassigned.refresh_from_db()
    assert (reassigned.reverted_by, reassigned.revert_reason) == (
        jonas,
        "Lena was on a customer call",
    )
    timer = SlaTimer.objects.get(lead=lead, completed_at__isnull=True)
    assert timer.owner == org.lena and timer.started_at == later
    kinds = list(AuditEvent.objects.filter(lead=lead).values_list("kind", flat=True))
    assert "sla_breach_auto_reassign" in kinds and "reassignment_reverted" in kinds
    event = AuditEvent.objects.get(lead=lead, kind="reassignment_reverted")
    assert event.actor_user == jonas and event.details["policy_version"] == 1


def test_manager_and_ops_manager_and_superuser_may_revert(org, policies):
    ops = UserFactory(username="ops")
    ops.groups.add(Group.objects.get(name="Ops managers"))
    for i, user in enumerate(
        [_user_for(org.katrin), ops, UserFactory(username="root", is_superuser=True)]
    ):
        lead = _lead(org, name=f"lead {i}", at=WED_10)
        with _at(REASSIGN_AT):
            run_sweep()
        reassignment = Reassignment.objects.get(lead=lead)
        revert_reassignment(reassignment, actor=user, reason="misfire")
        reassignment.refresh_from_db()
        assert reassignment.is_reverted


def test_team_lead_of_another_team_cannot_revert(org, reassigned):
    other = TeamFactory(slug="in-other", market=org.india)
    outsider = _user_for(RepFactory(team=other, role=Role.LEAD, name="Meera Iyer"))
    with pytest.raises(NotAllowed, match="Berlin sales"):
        revert_reassignment(reassigned, actor=outsider, reason="mine now")
    reassigned.refresh_from_db()
    assert not reassigned.is_reverted
    assert Lead.objects.get(pk=reassigned.lead_id).owner == org.felix


def test_plain_rep_cannot_revert(org, reassigned):
    with pytest.raises(NotAllowed):
        revert_reassignment(reassigned, actor=_user_for(org.lena), reason="give it back")


def test_reverting_twice_is_refused(org, reassigned):
    jonas = _user_for(org.jonas)
    revert_reassignment(reassigned, actor=jonas, reason="misfire")
    with pytest.raises(ReassignError, match="Already reverted"):
        revert_reassignment(reassigned, actor=jonas, reason="again")
    assert AuditEvent.objects.filter(kind="reassignment_reverted").count() == 1


def test_revert_after_the_lead_moved_to_a_third_owner_is_refused(org, reassigned):
    marie = RepFactory(team=org.berlin_team, name="Marie Weber")
    lead = Lead.objects.get(pk=reassigned.lead_id)
    reassign_lead(lead, marie, cause="manual", actor=None)
    with pytest.raises(ReassignError, match="moved on"):
        revert_reassignment(reassigned, actor=_user_for(org.jonas), reason="misfire")


def test_revert_needs_a_reason(org, reassigned):
    with pytest.raises(ReassignError, match="why"):
        revert_reassignment(reassigned, actor=_user_for(org.jonas), reason="  ")


def test_one_sweep_spreads_a_batch_without_overfilling_anyone(org, policies):
    marie = RepFactory(team=org.berlin_team, name="Marie Weber", capacity=1)
    org.felix.capacity = 1
    org.felix.save()
    leads = [_lead(org, name=f"Lead {i}") for i in range(3)]
    with _at(REASSIGN_AT):
        result = run_sweep()
    assert (result.reassigned, result.no_candidate) == (2, 1)
    owners = sorted(
        Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list(
            "owner__name", flat=True
        )
    )
    assert owners == ["Felix Wagner", "Lena Hoffmann", "Marie Weber"]
    assert Lead.objects.filter(owner=marie).count() == 1


def test_batched_reassignment_writes_history_reasons_per_lead(org, policies):
    leads = [_lead(org, name=f"Lead {i}") for i in range(2)]
    with _at(REASSIGN_AT):
        run_sweep()
    for lead in leads:
        record = lead.history.first()
        assert record.history_type == "~"
        assert record.history_change_reason.startswith("reassigned (sla) from Lena Hoffmann to ")
        assert record.history_date == REASSIGN_AT
