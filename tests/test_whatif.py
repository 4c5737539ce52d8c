"""What-if (SPEC §11): a draft replayed on a hand-built history with known answers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import CommandError, call_command

from audit import calibration
from escalations import whatif
from escalations.models import SlaPolicy
from escalations.orgfile.schema import OrgFileError
from escalations.sweep import run_sweep
from leadops import lifecycle
from tests.conftest import berlin
from tests.factories import make_lead

Q4 = calibration.quarter("2026Q4")
NOW = datetime(2027, 1, 15, tzinfo=UTC)


def _at(moment):
    return time_machine.travel(moment, tick=False)


@pytest.fixture
def history(org, policies):
    """Three Berlin leads from inbound web (NEW: 2 h window, warning at 96 min) on Wed 2 Dec:
    `quick` called after 40 min, `ninety` after 90 min (both met, never warned), `late` after
    110 min (warned at 11:36, met before the breach)."""
    leads = {}
    with _at(berlin(2026, 12, 2, 10, 0)):
        for name, rep in (("quick", org.lena), ("ninety", org.felix), ("late", org.lena)):
            leads[name] = make_lead(
                team=org.berlin_team, source=org.inbound_web, owner=rep, name=name
            )
    for name, minute in (("quick", (10, 40)), ("ninety", (11, 30))):
        with _at(berlin(2026, 12, 2, *minute)):
            lifecycle.record_activity(leads[name], "call", actor=leads[name].owner)
    run_sweep(now=berlin(2026, 12, 2, 11, 36))
    with _at(berlin(2026, 12, 2, 11, 50)):
        lifecycle.record_activity(leads["late"], "call", actor=org.lena)
    return leads


def _draft(org, inbound_window: str, **extra) -> whatif.Draft:
    return whatif.draft_from_document(
        {
            "sla_policies": [
                {"state": "NEW", "window": "1h"},
                {"state": "NEW", "source": "inbound_web", "window": inbound_window},
                {"state": "CONTACTED", "window": "24h"},
            ],
            **extra,
        }
    )


def _row(result, **match):
    (row,) = [r for r in result.rows if all(r[k] == v for k, v in match.items())]
    return row


def test_tightening_the_window_from_2h_to_1h_turns_known_met_timers_into_breaches(org, history):
    result = whatif.replay(Q4, _draft(org, "1h"), now=NOW)
    row = _row(result, market="DE", source="inbound_web", state="NEW")
    assert row["episodes"] == 3
    assert (row["warnings"], row["breaches"]) == (1, 0)
    # 1 h: warning at 48 min, breach at 60, reassign stage at 90: `ninety` (exactly 90 min)
    # breaches, `late` (110 min) breaches and is reassigned at 90 min, the new owner's fresh
    # window has run 20 min at the call; `quick` (40 min) is fine.
    assert (row["predicted_warnings"], row["predicted_breaches"]) == (2, 2)
    changed = {
        c["lead"]: (c["actual"], c["predicted"]) for c in result.changed if c["state"] == "NEW"
    }
    assert changed == {"ninety": ("on time", "breached"), "late": ("warned", "reassigned")}


def test_loosening_the_window_removes_known_warnings(org, history):
    result = whatif.replay(Q4, _draft(org, "3h"), now=NOW)
    row = _row(result, market="DE", source="inbound_web", state="NEW")
    assert (row["warnings"], row["predicted_warnings"], row["predicted_breaches"]) == (1, 0, 0)
    new = [(c["lead"], c["predicted"]) for c in result.changed if c["state"] == "NEW"]
    assert new == [("late", "on time")]


def test_draft_thresholds_replace_the_current_ones(org, history):
    # Warning at 50 % of 2 h (60 min): `ninety` and `late` would have been warned.
    result = whatif.replay(
        Q4, _draft(org, "2h", thresholds={"warn": 50, "breach": 100, "reassign": 150}), now=NOW
    )
    row = _row(result, market="DE", source="inbound_web", state="NEW")
    assert (row["predicted_warnings"], row["predicted_breaches"]) == (2, 0)


def test_an_unsaved_policy_edit_is_replayed_against_the_active_set(org, history, policies):
    edit = SlaPolicy.objects.get(pk=policies["NEW/inbound_web"].pk)
    edit.window = "1h"  # not saved
    result = whatif.replay(Q4, whatif.draft_with(edit), now=NOW)
    assert _row(result, source="inbound_web", state="NEW")["predicted_breaches"] == 2
    assert SlaPolicy.objects.get(pk=edit.pk).window == "2h"


def test_the_replay_keeps_to_the_teams_it_is_given(org, history):
    result = whatif.replay(Q4, _draft(org, "1h"), now=NOW, team_ids={org.india_team.pk})
    assert (result.episodes, result.rows, result.changed) == (0, [], [])


def test_a_draft_naming_an_unknown_market_is_refused(org):
    with pytest.raises(OrgFileError, match="no market 'XX'"):
        whatif.draft_from_document(
            {"sla_policies": [{"state": "NEW", "market": "XX", "window": "1h"}]}
        )


def test_simulate_reads_the_draft_file_and_prints_json(org, history, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "sla_policies:\n"
        "  - {state: NEW, window: 1h}\n"
        "  - {state: NEW, source: inbound_web, window: 1h}\n"
    )
    out = io.StringIO()
    call_command(
        "simulate",
        "--policy-file",
        str(draft),
        "--quarter",
        "2026Q4",
        "--format",
        "json",
        stdout=out,
    )
    data = json.loads(out.getvalue())
    (row,) = [r for r in data["rows"] if (r["source"], r["state"]) == ("inbound_web", "NEW")]
    assert (row["breaches"], row["predicted_breaches"], row["predicted_reassign_stages"]) == (
        0,
        2,
        1,
    )
    assert [c["lead"] for c in data["changed_leads"] if c["state"] == "NEW"] == ["ninety", "late"]
    assert "kept as they happened" in data["note"]
    text = io.StringIO()
    call_command("simulate", "--policy-file", str(draft), "--quarter", "2026Q4", stdout=text)
    assert "Leads whose outcome would change:" in text.getvalue()
    assert "ninety (DE · inbound_web · NEW): on time → breached" in text.getvalue()
    assert "late (DE · inbound_web · NEW): warned → reassigned" in text.getvalue()


def test_simulate_refuses_a_draft_without_policies(org, tmp_path):
    draft = tmp_path / "draft.yaml"
    draft.write_text("thresholds: {warn: 50, breach: 100, reassign: 150}\n")
    with pytest.raises(CommandError, match="sla_policies"):
        call_command("simulate", "--policy-file", str(draft), stdout=io.StringIO())


def test_a_hold_is_left_out_of_the_replayed_business_time(org, policies):
    # 10:00 to 10:30 running, held until 12:00, called at 12:45: 75 business minutes used, not
    # 165. Under 1 h that is a breach (past 60 min), not a reassign stage (past 90 min).
    with _at(berlin(2026, 12, 2, 10, 0)):
        lead = make_lead(team=org.berlin_team, source=org.inbound_web, owner=org.lena, name="H")
    with _at(berlin(2026, 12, 2, 10, 30)):
        lifecycle.put_on_hold(lead, actor=org.lena, reason="Customer in a meeting")
    with _at(berlin(2026, 12, 2, 12, 0)):
        lifecycle.resume(lead, actor=org.lena)
    with _at(berlin(2026, 12, 2, 12, 45)):
        lifecycle.record_activity(lead, "call", actor=org.lena)
    result = whatif.replay(Q4, _draft(org, "1h"), now=berlin(2026, 12, 2, 13, 0))
    row = _row(result, source="inbound_web", state="NEW")
    assert (row["predicted_breaches"], row["predicted_reassign_stages"]) == (1, 0)
    assert [(c["lead"], c["predicted"]) for c in result.changed] == [("H", "breached")]
