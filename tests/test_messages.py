"""What the messages say: the seed's sentence for every kind, local times, business time, the
facts, the buttons, and the three renderings (Slack blocks, Teams card, email)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import time_machine

from escalations.models import MessageKind, Persona, SlaTimer
from escalations.notify import outbox
from escalations.notify.messages import BUILDERS, duration, render
from leadops import lifecycle
from tests.conftest import berlin, kolkata
from tests.factories import make_lead
from tests.notify_fixtures import DUE_AT, WARN_AT

SEED = re.compile(
    r"^(?P<name>.+) from (?P<company>.+), in (?P<state>[A-Z]+) since "
    r"(?P<since>(\w{3} )?\d\d:\d\d), SLA breach in (?P<n>\d+) minutes\.$"
)

REQUIRED_FACTS = [
    "Lead",
    "Company",
    "Market",
    "Source",
    "State",
    "Since",
    "Elapsed",
    "SLA",
    "Owner",
]


def _row(lead, kind, persona, recipient, *, context=None, now=WARN_AT):
    timer = SlaTimer.objects.filter(lead=lead, completed_at__isnull=True).first()
    return outbox.message(
        key=f"test:{kind}:{persona}",
        kind=kind,
        persona=persona,
        lead=lead,
        now=now,
        recipient=recipient,
        timer=timer,
        context=context or {},
    )


def _every_kind(org):
    move = {"cause": "sla", "from_rep_id": org.felix.pk, "to_rep_id": org.lena.pk}
    candidates = [
        {
            "rep_id": org.felix.pk,
            "name": "Felix Wagner",
            "reason": "off_hours",
            "label": "off hours",
        },
        {
            "rep_id": org.katrin.pk,
            "name": "Katrin Vogel",
            "reason": "manager",
            "label": "team manager",
        },
        {"rep_id": org.asha.pk, "name": "Asha Rao", "reason": "other_team", "label": "other team"},
    ]
    return {
        MessageKind.WARNING: (Persona.OWNER, org.lena, {}),
        MessageKind.BREACH: (Persona.MANAGER, org.katrin, {}),
        MessageKind.REASSIGNED_FROM: (Persona.OLD_OWNER, org.felix, move),
        MessageKind.REASSIGNED_TO: (Persona.NEW_OWNER, org.lena, move),
        MessageKind.REASSIGNED_TEAM: (Persona.MANAGER, org.katrin, move),
        MessageKind.REVERTED: (
            Persona.OWNER,
            org.lena,
            {"reason": "Lena knows the client", "restored": True},
        ),
        MessageKind.NO_CANDIDATE: (Persona.MANAGER, org.katrin, {"candidates": candidates}),
        MessageKind.LIMIT_REACHED: (Persona.MANAGER, org.katrin, {"auto_reassignments": 2}),
        MessageKind.UNASSIGNED: (Persona.MANAGER, org.katrin, {"candidates": candidates}),
        MessageKind.DELIVERY_FAILED: (
            Persona.MANAGER,
            org.katrin,
            {
                "failed_kind": "warning",
                "failed_recipient": "Lena Hoffmann",
                "channel": "slack",
                "error": "Slack: user_not_found",
                "attempts": 1,
            },
        ),
    }


def test_every_kind_has_a_builder():
    assert set(BUILDERS) == set(MessageKind.values)


@pytest.mark.parametrize("kind", MessageKind.values)
def test_every_kind_reads_like_the_seed_and_carries_the_facts(kind, seed_lead, org):
    persona, recipient, context = _every_kind(org)[kind]
    message = render(_row(seed_lead, kind, persona, recipient, context=context), now=WARN_AT)

    match = SEED.match(message.headline)
    assert match, message.headline
    assert match.groupdict() == {
        "name": "Aisha Al-Mansoori",
        "company": "Emirates Group",
        "state": "NEW",
        "since": "08:00",
        "n": "12",
    }
    assert message.headline in message.text
    assert message.title and message.title in message.text
    facts = dict(message.facts)
    assert [label for label, _ in message.facts][:9] == REQUIRED_FACTS
    assert facts["Market"] == "Germany (DE)"
    assert facts["Source"] == "Paid social"
    assert facts["Elapsed"] == "48 minutes (business time)"
    assert facts["Owner"] == "Lena Hoffmann"
    assert message.buttons[0].action_id == "lead_open"
    assert message.buttons[0].url == message.link
    if persona == Persona.MANAGER:
        assert message.link == f"http://testserver/admin/leadops/lead/{seed_lead.pk}/change/"
    else:
        assert message.link.startswith("http://testserver/l/")

    blocks = message.slack_blocks()
    assert len(blocks) <= 50
    assert all(len(field["text"]) < 2000 for b in blocks for field in b.get("fields", []))
    assert len(json.dumps(message.teams_card())) < 28_000  # the Teams webhook payload limit
    assert message.headline in message.email_text()
    assert "Emirates Group" in message.email_html()


def test_the_warning_reads_exactly_like_the_seed(warning):
    message = render(warning, now=WARN_AT)
    assert message.headline == (
        "Aisha Al-Mansoori from Emirates Group, in NEW since 08:00, SLA breach in 12 minutes."
    )
    assert message.text.startswith("SLA warning: Aisha Al-Mansoori from Emirates Group")


def test_the_breach_says_how_long_it_is_overdue(breach):
    message = render(breach, now=DUE_AT + timedelta(minutes=5))
    assert message.headline == (
        "Aisha Al-Mansoori from Emirates Group, in NEW since 08:00, "
        "SLA breached, overdue by 5 minutes."
    )
    assert dict(message.facts)["SLA"] == "overdue by 5 minutes (was due 10:00)"
    assert message.intro == "Lena Hoffmann has not reached out in time."
    assert "Owner: Lena Hoffmann." in message.text


def test_since_shows_the_weekday_when_it_was_not_today(warning):
    tuesday = berlin(2026, 3, 3, 9, 30)
    message = render(warning, now=tuesday)
    # Monday 09:00-18:00 is 9 business hours; the window was 1 h: overdue by 8 h 30 min.
    assert message.headline == (
        "Aisha Al-Mansoori from Emirates Group, in NEW since Mon 08:00, "
        "SLA breached, overdue by 8 hours 30 minutes."
    )
    assert dict(message.facts)["Since"] == "Mon 08:00 CET"


def test_elapsed_and_time_left_are_business_time_across_closing(org, policies):
    # Created 17:30 on Monday: 30 minutes of the 1 h window left at closing, due Tue 09:30.
    with time_machine.travel(berlin(2026, 3, 2, 17, 30), tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    row = _row(lead, MessageKind.WARNING, Persona.OWNER, org.lena)
    message = render(row, now=berlin(2026, 3, 3, 8, 0))
    assert message.headline.endswith("in NEW since Mon 17:30, SLA breach in 30 minutes.")
    facts = dict(message.facts)
    assert facts["Elapsed"] == "30 minutes (business time)"
    assert facts["SLA"] == "breach in 30 minutes (due 09:30)"


def test_times_are_shown_in_the_markets_zone(org, policies):
    with time_machine.travel(kolkata(2026, 3, 2, 10, 0), tick=False):
        lead = make_lead(
            team=org.india_team,
            source=org.paid_social,
            owner=org.asha,
            name="Ravi Kumar",
            company="Tata Motors",
        )
    row = _row(lead, MessageKind.WARNING, Persona.OWNER, org.asha)
    message = render(row, now=kolkata(2026, 3, 2, 10, 48))
    assert message.headline == (
        "Ravi Kumar from Tata Motors, in NEW since 10:00, SLA breach in 12 minutes."
    )
    facts = dict(message.facts)
    assert facts["Since"] == "10:00 IST"
    assert facts["Market"] == "India (IN)"
    assert "Asia/Kolkata" in message.footer


def test_a_lead_without_a_company_is_named_alone(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 9, 0), tick=False):
        lead = make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name="Jan Novak",
            company="",
        )
    message = render(
        _row(lead, MessageKind.WARNING, Persona.OWNER, org.lena), now=berlin(2026, 3, 2, 9, 48)
    )
    assert message.headline == "Jan Novak, in NEW since 09:00, SLA breach in 12 minutes."


def test_a_held_lead_shows_its_clock_paused(warning, seed_lead, org):
    with time_machine.travel(WARN_AT + timedelta(minutes=2), tick=False):
        lifecycle.put_on_hold(seed_lead, actor=org.lena, reason="customer on holiday")
    message = render(warning, now=WARN_AT + timedelta(hours=2))
    assert message.headline.endswith("in NEW since 08:00, SLA paused (on hold).")
    assert dict(message.facts)["SLA"] == "paused (on hold), 10 minutes left"


def test_slack_text_is_escaped(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 9, 0), tick=False):
        lead = make_lead(
            team=org.berlin_team,
            source=org.paid_social,
            owner=org.lena,
            name="<!channel> Eve",
            company="A&B <Ltd>",
        )
    blocks = render(
        _row(lead, MessageKind.WARNING, Persona.OWNER, org.lena), now=berlin(2026, 3, 2, 9, 48)
    ).slack_blocks()
    text = json.dumps(blocks)
    assert "<!channel>" not in text
    assert "&lt;!channel&gt; Eve from A&amp;B &lt;Ltd&gt;" in text


def test_action_buttons_go_only_to_those_who_can_act(seed_lead, org):
    kinds = _every_kind(org)
    ids = {}
    for kind, (persona, recipient, context) in kinds.items():
        message = render(_row(seed_lead, kind, persona, recipient, context=context), now=WARN_AT)
        ids[kind] = [b.action_id for b in message.buttons]
    everything = ["lead_open", "lead_log_call", "lead_log_email", "lead_disqualify"]
    assert ids[MessageKind.WARNING] == everything
    assert ids[MessageKind.BREACH] == everything
    assert ids[MessageKind.REASSIGNED_TO] == everything
    assert ids[MessageKind.REASSIGNED_FROM] == ["lead_open"]
    assert ids[MessageKind.REASSIGNED_TEAM] == ["lead_open"]
    assert ids[MessageKind.DELIVERY_FAILED] == ["lead_open"]


def test_no_disqualify_button_once_the_lead_is_past_qualified(warning, seed_lead, org):
    seed_lead.state = "PROPOSAL"
    seed_lead.save()
    ids = [b.action_id for b in render(warning, now=WARN_AT).buttons]
    assert ids == ["lead_open", "lead_log_call", "lead_log_email"]


def test_reassignment_messages_name_both_reps(seed_lead, org):
    kinds = _every_kind(org)
    by_kind = {}
    for kind in (
        MessageKind.REASSIGNED_FROM,
        MessageKind.REASSIGNED_TO,
        MessageKind.REASSIGNED_TEAM,
    ):
        persona, recipient, context = kinds[kind]
        by_kind[kind] = render(
            _row(seed_lead, kind, persona, recipient, context=context), now=WARN_AT
        )
    assert by_kind[MessageKind.REASSIGNED_FROM].title == "Lead reassigned to Lena Hoffmann"
    assert by_kind[MessageKind.REASSIGNED_TO].intro.startswith(
        "You take it over from Felix Wagner after the SLA breach"
    )
    assert by_kind[MessageKind.REASSIGNED_TEAM].intro == (
        "Felix Wagner → Lena Hoffmann after the SLA breach."
    )


def test_the_no_candidate_notice_says_why_each_rep_was_passed_over(seed_lead, org):
    persona, recipient, context = _every_kind(org)[MessageKind.NO_CANDIDATE]
    message = render(
        _row(seed_lead, MessageKind.NO_CANDIDATE, persona, recipient, context=context), now=WARN_AT
    )
    assert message.intro == (
        "Nobody on Berlin sales can take it now (Felix Wagner: off hours). "
        "It stays with Lena Hoffmann; the sweep keeps trying."
    )


def test_the_delivery_failed_notice_says_what_failed_and_how(seed_lead, org):
    persona, recipient, context = _every_kind(org)[MessageKind.DELIVERY_FAILED]
    message = render(
        _row(seed_lead, MessageKind.DELIVERY_FAILED, persona, recipient, context=context),
        now=WARN_AT,
    )
    assert message.intro == (
        "The SLA warning for Lena Hoffmann could not be delivered by Slack "
        "(Slack: user_not_found) after 1 attempt. Please pass it on."
    )


def test_the_email_has_a_subject_text_and_html_with_a_call_link(warning):
    message = render(warning, now=WARN_AT)
    assert message.email_subject() == ("[LeadOps] SLA warning: Aisha Al-Mansoori (Emirates Group)")
    text = message.email_text()
    assert "Owner: Lena Hoffmann" in text
    assert "Call: +49 30 1234567" in text
    html = message.email_html()
    assert "<strong>Aisha Al-Mansoori from Emirates Group, in NEW since 08:00" in html
    assert f'href="{message.link}"' in html


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "less than a minute"),
        (59, "less than a minute"),
        (60, "1 minute"),
        (12 * 60 + 59, "12 minutes"),
        (3600, "1 hour"),
        (3600 + 60, "1 hour 1 minute"),
        (2 * 3600 + 5 * 60, "2 hours 5 minutes"),
        (45 * 3600, "45 hours"),
    ],
)
def test_durations_read_naturally(seconds, text):
    assert duration(timedelta(seconds=seconds)) == text


def test_a_warning_about_an_unowned_lead_asks_the_manager_to_assign_it(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 9, 0), tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    lead.owner = None
    lead.save()
    message = render(
        _row(lead, MessageKind.WARNING, Persona.MANAGER, org.katrin), now=berlin(2026, 3, 2, 9, 48)
    )
    assert message.intro == "Nobody owns this lead: assign it before the breach."
    assert dict(message.facts)["Owner"] == "nobody"
    assert "Owner: nobody." in message.text
