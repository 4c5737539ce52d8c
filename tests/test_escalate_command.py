"""`manage.py escalate` says what fired, lead by lead (lead, stage, owner, new owner), in text
or JSON, and its totals keep the leads that got a new owner apart from those that kept theirs."""

from __future__ import annotations

import json

import time_machine
from django.core.management import call_command

from escalations.models import SweepRun
from escalations.sweep import SweepResult
from teams.models import Rep
from tests.conftest import berlin
from tests.factories import make_lead


def test_escalate_prints_each_lead_with_stage_owner_and_new_owner(org, policies, capsys):
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas S")
    # 10:50 Berlin: past the warning (10:48), before the breach (11:00).
    call_command("escalate", "--now", "2026-03-02T09:50:00Z")
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if "Lukas S" in line)
    assert line.startswith("warned") and "owner Lena Hoffmann" in line
    assert "1 warned, 0 breached, 0 reassigned to a new owner" in out


def test_escalate_json_lists_reassignments_with_the_new_owner(org, policies, capsys):
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(
            team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas Schmidt"
        )
    # 11:31 Berlin: past 150 % of the 1 h window; Felix is free and takes the lead.
    call_command("escalate", "--now", "2026-03-02T10:31:00Z", "--json")
    document = json.loads(capsys.readouterr().out)
    assert document["totals"]["reassigned"] == len(
        [f for f in document["fired"] if f["stage"] == "reassigned"]
    )
    lukas = next(
        f for f in document["fired"] if f["lead"].startswith("Lukas") and f["stage"] == "reassigned"
    )
    assert lukas["owner"] == "Lena Hoffmann" and lukas["new_owner"] == "Felix Wagner"
    stages = {f["stage"] for f in document["fired"]}
    assert {"warned", "breached", "reassigned"} <= stages
    assert SweepRun.objects.filter(correlation_id=document["totals"]["correlation_id"]).exists()


def test_escalate_names_the_leads_that_kept_their_owner(org, policies, capsys):
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name="Lukas S")
    Rep.objects.filter(pk=org.felix.pk).update(active=False)  # nobody else can take it
    call_command("escalate", "--now", "2026-03-02T10:31:00Z")
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("kept owner"))
    assert "Lukas S" in line and "owner Lena Hoffmann" in line and "new owner" not in line
    assert "0 reassigned to a new owner, 1 kept their owner (nobody available)" in out


def test_the_summary_never_counts_leads_without_a_candidate_inside_the_reassigned():
    summary = SweepResult(reassigned=4, no_candidate=2, limit_reached=1).summary()
    assert "4 reassigned to a new owner, 2 kept their owner (nobody available), " in summary
    assert "1 at the reassignment limit" in summary
    assert "(2 without candidate" not in summary
