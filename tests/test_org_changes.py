"""Org edits with consequences go through one module (escalations/org_changes.py) whichever door
they come from, and show in the audit log with their reason (SPEC §4, §5, §7)."""

from __future__ import annotations

import time_machine
import yaml
from django.core.management import call_command

from audit.models import AuditEvent, AuditKind
from escalations import org_changes
from escalations.models import Outcome, SlaPolicy, SlaThresholds, SlaTimer
from escalations.orgfile import export_document, load_org
from leadops.models import Lead
from tests.conftest import berlin
from tests.factories import make_lead


def _open_timer(lead) -> SlaTimer:
    return SlaTimer.objects.get(lead=lead, completed_at__isnull=True)


def test_deactivating_a_policy_cancels_its_timers_falls_back_and_audits_the_reason(org, policies):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, owner=org.lena, source=org.inbound_web)
        assert _open_timer(lead).policy == policies["NEW/inbound_web"]

        result = org_changes.set_policy_active(
            policies["NEW/inbound_web"], False, actor=None, reason="web leads are fast now"
        )

    assert result.cancelled == 1
    assert _open_timer(lead).policy == policies["NEW"]
    assert SlaTimer.objects.get(lead=lead, outcome=Outcome.CANCELLED)
    event = AuditEvent.objects.get(kind=AuditKind.POLICY_CHANGED)
    assert event.policy_id == policies["NEW/inbound_web"].pk
    assert event.policy_version == 2
    assert event.details["changes"] == {"active": [True, False]}
    assert event.details["reason"] == "web leads are fast now"
    assert event.details["cancelled_timers"] == 1


def test_a_new_policy_is_audited_as_created(org):
    policy = SlaPolicy(state="NEW", market=org.de, window="30m")
    org_changes.save_policy(policy, actor=None, reason="Germany answers faster")

    event = AuditEvent.objects.get(kind=AuditKind.POLICY_CHANGED)
    assert event.details["created"] is True
    assert event.details["changes"] == {}
    assert (event.policy_id, event.policy_version) == (policy.pk, 1)


def test_threshold_edits_are_audited_with_what_changed(db):
    thresholds = SlaThresholds.objects.get(pk=1)
    thresholds.warn_percent = 70
    org_changes.save_thresholds(thresholds, actor=None, reason="earlier warnings")

    event = AuditEvent.objects.get(kind=AuditKind.THRESHOLDS_CHANGED)
    assert event.details["changes"] == {"warn_percent": [80, 70]}
    assert event.details["thresholds"]["warn"] == 70
    assert event.details["reason"] == "earlier warnings"


def test_a_calendar_change_replans_the_market_and_is_audited(org, policies):
    with time_machine.travel(berlin(2026, 12, 2, 17, 30), tick=False):
        lead = make_lead(team=org.berlin_team, owner=org.lena, source=org.paid_social)
        due_before = _open_timer(lead).due_at
        org.de.hours = {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
        result = org_changes.save_market(org.de, actor=None, reason="longer days")

    assert result.replanned == 1
    assert _open_timer(lead).due_at < due_before  # 30 min left today, then the next morning
    event = AuditEvent.objects.get(kind=AuditKind.CALENDAR_CHANGED)
    assert event.details == {
        "market": "DE",
        "market_id": org.de.pk,
        "reason": "longer days",
        "replanned_timers": 1,
    }


def test_a_market_edit_that_leaves_the_calendar_alone_changes_no_timer(org, policies):
    org.de.name = "Deutschland"
    result = org_changes.save_market(org.de, actor=None, reason="rename")

    assert result.replanned == 0
    assert not AuditEvent.objects.filter(kind=AuditKind.CALENDAR_CHANGED).exists()


def test_making_a_rep_inactive_hands_over_their_leads_and_audits_it_for_their_team(org, policies):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, owner=org.lena, source=org.paid_social)
        result = org_changes.set_rep_active(org.lena, False, actor=None, reason="left the company")

    org.lena.refresh_from_db()
    assert not org.lena.active
    assert (result.reassigned, result.unassigned) == (1, 0)
    assert Lead.objects.get(pk=lead.pk).owner == org.felix
    event = AuditEvent.objects.get(kind=AuditKind.REP_DEACTIVATED)
    assert event.team_id == org.berlin_team.pk
    assert event.owner_id == org.lena.pk
    assert event.details["reason"] == "left the company"
    assert event.details["reassigned"] == 1


def test_the_org_file_goes_through_the_same_consequences(org, policies, tmp_path):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, owner=org.lena, source=org.inbound_web)
        document = export_document()
        for policy in document["sla_policies"]:
            if policy.get("source") == "inbound_web":
                policy["active"] = False
        path = tmp_path / "org.yaml"
        path.write_text(yaml.safe_dump(document))
        load_org(path)

    assert _open_timer(lead).policy == policies["NEW"]
    event = AuditEvent.objects.get(kind=AuditKind.POLICY_CHANGED)
    assert event.details["reason"] == "org file org.yaml"


def test_a_dry_run_reports_what_would_change_and_writes_nothing(org, policies, tmp_path, capsys):
    with time_machine.travel(berlin(2026, 12, 2, 10, 0), tick=False):
        lead = make_lead(team=org.berlin_team, owner=org.lena, source=org.inbound_web)
        path = tmp_path / "org.yaml"
        path.write_text(yaml.safe_dump(export_document()))
        load_org(path)  # the factories' org, as the file would store it
        document = export_document()
        for policy in document["sla_policies"]:
            if policy.get("source") == "inbound_web":
                policy["active"] = False
        document["markets"][0]["name"] = "Deutschland"
        path.write_text(yaml.safe_dump(document))
        events_before = AuditEvent.objects.count()

        call_command("load_org", str(path), "--dry-run")

    out = capsys.readouterr().out
    assert "dry run, nothing written" in out
    assert "markets: 0 created, 1 updated, 1 unchanged" in out
    assert "sla_policies: 0 created, 1 updated, 4 unchanged" in out
    assert "cancelled 1 timers of deactivated" in out
    assert SlaPolicy.objects.get(pk=policies["NEW/inbound_web"].pk).active
    assert org.de.__class__.objects.get(pk=org.de.pk).name == "Germany"
    assert _open_timer(lead).policy == policies["NEW/inbound_web"]
    assert AuditEvent.objects.count() == events_before
