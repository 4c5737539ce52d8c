"""The Slack app at /slack/events, through Django's test client with correctly signed payloads,
against the wire-level fake Slack (tests/fakes.py): buttons act once and only for the owner or
the team's lead/manager, the disqualify modal, the message updated on its response_url, the App
Home; forged and stale requests change nothing. django-q2 runs inline in tests (sync), so what is
queued after the ack has reached the fake by the time the response is back."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from slack_sdk.signature import SignatureVerifier

from audit.models import AuditEvent, AuditKind
from escalations.models import ActionReceipt, Notification, SlaTimer
from escalations.notify.messages import render
from escalations.notify.transports import HTTP_TIMEOUT_SECONDS
from escalations.reassign import reassign_lead
from escalations.slack import home
from escalations.slack.app import request_handler
from escalations.slack.clients import web_client, webhook_client
from leadops import lifecycle
from leadops.admin_kit import audit_summary
from leadops.models import Activity, Lead
from tests.factories import RepFactory, make_lead
from tests.fakes import Reply
from tests.notify_fixtures import WARN_AT, after

SECRET = "test-signing-secret"


@pytest.fixture
def slack(settings, fake_slack):
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.SLACK_SIGNING_SECRET = SECRET
    settings.SLACK_API_URL = fake_slack.url
    settings.EMAIL_ENABLED = False
    return fake_slack


@pytest.fixture
def at_warn_time():
    with time_machine.travel(WARN_AT, tick=False) as traveller:
        yield traveller


# --- building and sending Slack's payloads --------------------------------------------------------


def signed_post(client, body: str, content_type: str, *, secret=SECRET, timestamp=None, **headers):
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return client.post(
        "/slack/events",
        data=body,
        content_type=content_type,
        HTTP_X_SLACK_REQUEST_TIMESTAMP=ts,
        HTTP_X_SLACK_SIGNATURE=signature,
        **headers,
    )


def interactive(payload: dict) -> str:
    return urlencode({"payload": json.dumps(payload)})


def post_interactive(client, payload: dict, **kwargs):
    return signed_post(client, interactive(payload), "application/x-www-form-urlencoded", **kwargs)


def click(notification, fake, action_id: str, *, user="ULENA", ts="1700000000.000001", n=1):
    """The block_actions payload Slack sends when `user` clicks `action_id` on the message
    rendered from the outbox row `notification` as delivery renders it now (with the lead's
    open timer)."""
    timer = SlaTimer.objects.filter(lead=notification.lead, completed_at__isnull=True).first()
    message = render(notification, now=WARN_AT, timer=timer or notification.timer)
    blocks = message.slack_blocks()
    [button] = [
        element
        for block in blocks
        if block.get("block_id") == "lead_actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    ]
    channel = "D0LENA"
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0"},
        "api_app_id": "A0",
        "token": "legacy-token",
        "team": {"id": "T0", "domain": "acme"},
        "container": {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": f"1234.5678.trigger{n}",
        "channel": {"id": channel, "name": "directmessage"},
        "message": {
            "type": "message",
            "ts": ts,
            "text": message.text,
            "blocks": blocks,
            "user": "UBOT",
            "bot_id": "B0",
        },
        "response_url": fake.response_url(f"r{n}"),
        "actions": [{**button, "block_id": "lead_actions", "action_ts": f"1700000100.00{n:04d}"}],
    }


def home_event(user="ULENA", tab="home") -> str:
    return json.dumps(
        {
            "token": "legacy-token",
            "team_id": "T0",
            "api_app_id": "A0",
            "type": "event_callback",
            "event_id": "Ev0001",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0LENA",
                "tab": tab,
                "event_ts": f"{time.time():.6f}",
            },
        }
    )


def snapshot(lead):
    return (
        Activity.objects.filter(lead=lead).count(),
        ActionReceipt.objects.count(),
        Lead.objects.values_list("state", "owner_id", "updated_at").get(pk=lead.pk),
        list(SlaTimer.objects.filter(lead=lead).values_list("pk", "completed_at", "stage")),
    )


def slack_audits(**filters):
    return [
        e.details
        for e in AuditEvent.objects.filter(kind=AuditKind.SLACK_ACTION, **filters).order_by("id")
    ]


def responses(fake) -> list[dict]:
    return [r.json for r in fake.calls("response")]


# --- acting from a message ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action_id", "kind"), [("lead_log_call", "call"), ("lead_log_email", "email")]
)
def test_the_owner_logs_from_the_message_the_timer_resets_and_the_message_says_so(
    client, slack, warning, org, at_warn_time, action_id, kind
):
    lead = warning.lead
    old_timer = warning.timer

    response = post_interactive(client, click(warning, slack, action_id))

    assert response.status_code == 200
    [activity] = Activity.objects.filter(lead=lead)
    assert (activity.kind, activity.actor_id, activity.counted_as_progress) == (
        kind,
        org.lena.pk,
        True,
    )
    lead.refresh_from_db()
    assert lead.state == "CONTACTED"
    old_timer.refresh_from_db()
    assert old_timer.outcome == "met" and old_timer.completed_at is not None
    assert SlaTimer.objects.get(lead=lead, completed_at__isnull=True).state == "CONTACTED"

    verb = "Call logged" if kind == "call" else "Email logged"
    [update] = responses(slack)
    assert update["replace_original"] is True
    block_ids = [b.get("block_id") for b in update["blocks"]]
    assert "lead_actions" not in block_ids and "lead_outcome" in block_ids
    outcome = next(b for b in update["blocks"] if b.get("block_id") == "lead_outcome")
    assert f"{verb} by Lena Hoffmann at 09:48 CET · SLA met" in outcome["elements"][0]["text"]
    [kept] = [b for b in update["blocks"] if b.get("block_id") == "open"]
    assert [e["action_id"] for e in kept["elements"]] == ["lead_open"]

    [audit] = slack_audits(lead_id=lead.pk)
    assert (audit["slack_user"], audit["action"], audit["result"]) == (
        "ULENA",
        action_id,
        "recorded",
    )
    assert audit["activity_id"] == activity.pk
    [published] = slack.calls("views.publish")
    assert published.json["user_id"] == "ULENA"


def test_the_same_request_delivered_twice_records_one_activity(
    client, slack, warning, at_warn_time
):
    payload = click(warning, slack, "lead_log_call")

    first = post_interactive(client, payload)
    retry = post_interactive(
        client, payload, HTTP_X_SLACK_RETRY_NUM="1", HTTP_X_SLACK_RETRY_REASON="http_timeout"
    )

    assert first.status_code == retry.status_code == 200
    assert Activity.objects.filter(lead=warning.lead).count() == 1
    assert [a["result"] for a in slack_audits()] == ["recorded", "duplicate"]
    assert len(responses(slack)) == 1  # a retry of our own answer says nothing more


def test_a_double_click_records_one_activity_and_says_so(client, slack, warning, org, at_warn_time):
    # Jonas (team lead) logs a call: not progress, so the timer stays and only the key stops
    # the second click.
    post_interactive(client, click(warning, slack, "lead_log_call", user="UJONAS", n=1))
    post_interactive(client, click(warning, slack, "lead_log_call", user="UJONAS", n=2))

    [activity] = Activity.objects.filter(lead=warning.lead)
    assert (activity.actor_id, activity.counted_as_progress) == (org.jonas.pk, False)
    first, second = responses(slack)
    assert "Call logged by Jonas Becker at 09:48 CET · SLA clock still running" in first["text"]
    assert second["response_type"] == "ephemeral"
    assert second["text"].startswith("Already recorded, so nothing new was recorded: Call logged")


def test_a_rep_who_does_not_own_the_lead_gets_an_ephemeral_refusal(
    client, slack, warning, at_warn_time
):
    before = snapshot(warning.lead)

    response = post_interactive(client, click(warning, slack, "lead_log_call", user="UFELIX"))

    assert response.status_code == 200
    assert snapshot(warning.lead) == before
    [note] = responses(slack)
    assert (note["response_type"], note["replace_original"]) == ("ephemeral", False)
    assert note["text"].startswith("You can't act on this lead: it is owned by Lena Hoffmann.")
    [audit] = slack_audits()
    assert (audit["slack_user"], audit["result"]) == ("UFELIX", "refused")
    assert audit["detail"].startswith("not_allowed:")
    event = AuditEvent.objects.get(kind=AuditKind.SLACK_ACTION)
    assert (event.actor_name, event.lead_id) == ("Felix Wagner", warning.lead_id)
    assert "slack_user: UFELIX · action: lead_log_call · result: refused" in audit_summary(event)


def test_a_manager_of_another_team_is_refused(client, slack, warning, at_warn_time):
    before = snapshot(warning.lead)
    post_interactive(client, click(warning, slack, "lead_log_email", user="UVIKRAM"))
    assert snapshot(warning.lead) == before
    assert "only its owner or a team lead or manager of Berlin sales" in responses(slack)[0][
        "text"
    ].replace("Only", "only")


def test_a_slack_user_linked_to_no_rep_is_told_so(client, slack, warning, at_warn_time):
    before = snapshot(warning.lead)
    post_interactive(client, click(warning, slack, "lead_log_call", user="USTRANGER"))
    assert snapshot(warning.lead) == before
    [note] = responses(slack)
    assert note["text"].startswith("Your Slack account is not linked to a rep")
    assert "USTRANGER" in note["text"]
    [audit] = slack_audits()
    assert (audit["result"], audit["detail"].split(":")[0]) == ("refused", "unlinked")


def test_a_button_from_an_old_message_does_not_act(client, slack, warning, org, at_warn_time):
    """The lead was reassigned (to Felix) since the warning, then given back to Lena: she owns it
    again, but on a new timer, so the warning's buttons are out of date."""
    payload = click(warning, slack, "lead_log_call")  # the message as it was sent
    reassign_lead(warning.lead, org.felix, cause="manual", actor=org.jonas)
    reassign_lead(warning.lead, org.lena, cause="manual", actor=org.jonas)
    before = snapshot(warning.lead)

    post_interactive(client, payload)

    assert snapshot(warning.lead) == before
    [note] = responses(slack)
    assert note["response_type"] == "ephemeral"
    assert note["text"].startswith("This message is out of date: the lead has moved on")
    assert "it is now in NEW, owned by Lena Hoffmann" in note["text"]


def test_the_new_owner_acts_from_the_lead_reassigned_to_you_message(
    client, slack, warning, org, at_warn_time
):
    reassign_lead(warning.lead, org.felix, cause="manual", actor=org.jonas)
    to_felix = Notification.objects.get(lead=warning.lead, kind="reassigned_to")

    post_interactive(client, click(to_felix, slack, "lead_log_call", user="UFELIX"))

    [activity] = Activity.objects.filter(lead=warning.lead)
    assert (activity.actor_id, activity.counted_as_progress) == (org.felix.pk, True)
    assert "Call logged by Felix Wagner at 09:48 CET · SLA met" in responses(slack)[0]["text"]


def test_a_button_on_a_closed_lead_does_not_act(client, slack, warning, org, at_warn_time):
    payload = click(warning, slack, "lead_log_email")  # the message as it was sent
    lifecycle.transition(warning.lead, "LOST", actor=org.lena, reason="went elsewhere")
    before = snapshot(warning.lead)
    post_interactive(client, payload)
    assert snapshot(warning.lead) == before
    assert responses(slack)[0]["text"].startswith("This lead is closed (Lost).")


def test_a_button_whose_value_was_not_made_by_leadops_changes_nothing(
    client, slack, warning, at_warn_time
):
    payload = click(warning, slack, "lead_log_call")
    payload["actions"][0]["value"] = '{"lead_id": "1; drop table"}'
    before = snapshot(warning.lead)

    assert post_interactive(client, payload).status_code == 200

    assert snapshot(warning.lead) == before
    assert (
        responses(slack)[0]["text"] == "Nothing was recorded: lead_id must be a positive integer."
    )


def test_open_lead_is_acknowledged_and_changes_nothing(client, slack, warning, at_warn_time):
    before = snapshot(warning.lead)
    response = post_interactive(client, click(warning, slack, "lead_open"))
    assert response.status_code == 200
    assert snapshot(warning.lead) == before
    assert not responses(slack) and not slack_audits()


# --- the disqualify modal -------------------------------------------------------------------------


def submission(opened: dict, *, reason, user="ULENA", view_id="VSUBMIT1") -> dict:
    view = opened["view"]
    values = {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
    return {
        "type": "view_submission",
        "user": {"id": user, "team_id": "T0"},
        "api_app_id": "A0",
        "token": "legacy-token",
        "team": {"id": "T0", "domain": "acme"},
        "trigger_id": "9999.8888.submit",
        "view": {
            **view,
            "id": view_id,
            "hash": "h2",
            "state": {"values": values},
        },
    }


def test_disqualify_opens_a_modal_and_its_submission_disqualifies_with_the_reason(
    client, slack, warning, org, at_warn_time
):
    response = post_interactive(client, click(warning, slack, "lead_disqualify"))

    assert response.status_code == 200
    [opened] = slack.calls("views.open")
    assert opened.json["trigger_id"] == "1234.5678.trigger1"
    modal = opened.json["view"]
    assert modal["callback_id"] == "lead_disqualify_submit"
    assert "Aisha Al-Mansoori" in json.dumps(modal["blocks"])
    assert not Activity.objects.exists()  # opening the modal records nothing

    done = post_interactive(client, submission(opened.json, reason="Student, no budget"))

    assert done.status_code == 200 and done.content in (b"", b"{}")
    lead = Lead.objects.get(pk=warning.lead_id)
    assert lead.state == "UNQUALIFIED"
    [activity] = Activity.objects.filter(lead=lead)
    assert (activity.kind, activity.reason) == ("disqualify", "Student, no budget")
    [update] = responses(slack)
    assert update["replace_original"] is True
    assert "lead_actions" not in [b.get("block_id") for b in update["blocks"]]
    assert (
        "Disqualified by Lena Hoffmann at 09:48 CET (Student, no budget) · SLA met"
        in update["text"]
    )
    assert [a["result"] for a in slack_audits()] == ["recorded"]


def test_a_disqualification_without_a_reason_stays_in_the_modal(
    client, slack, warning, at_warn_time
):
    post_interactive(client, click(warning, slack, "lead_disqualify"))
    [opened] = slack.calls("views.open")
    before = snapshot(warning.lead)

    response = post_interactive(client, submission(opened.json, reason="   "))

    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reason": "Nothing was recorded: a disqualification needs a reason."},
    }
    assert snapshot(warning.lead) == before


def test_a_modal_submitted_after_the_lead_moved_on_records_nothing(
    client, slack, warning, org, at_warn_time
):
    post_interactive(client, click(warning, slack, "lead_disqualify"))
    [opened] = slack.calls("views.open")
    reassign_lead(warning.lead, org.felix, cause="manual", actor=org.jonas)
    before = snapshot(warning.lead)

    response = post_interactive(client, submission(opened.json, reason="duplicate"))

    assert response.json()["response_action"] == "update"
    assert "it is owned by Felix Wagner" in json.dumps(response.json()["view"])
    assert snapshot(warning.lead) == before


def test_a_non_owner_gets_no_modal(client, slack, warning, at_warn_time):
    post_interactive(client, click(warning, slack, "lead_disqualify", user="URAHUL"))
    assert not slack.calls("views.open")
    assert responses(slack)[0]["text"].startswith("You can't act on this lead")


# --- forged and stale requests --------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["wrong secret", "changed body", "stale", "no signature"])
def test_a_forged_or_stale_request_gets_401_and_changes_nothing(
    client, slack, warning, at_warn_time, forgery
):
    body = interactive(click(warning, slack, "lead_log_call"))
    ts = int(time.time())
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=str(ts), body=body)
    headers = {"HTTP_X_SLACK_REQUEST_TIMESTAMP": str(ts), "HTTP_X_SLACK_SIGNATURE": signature}
    if forgery == "wrong secret":
        headers["HTTP_X_SLACK_SIGNATURE"] = SignatureVerifier("not-our-secret").generate_signature(
            timestamp=str(ts), body=body
        )
    elif forgery == "changed body":
        body = body.replace("lead_log_call", "lead_log_email")
    elif forgery == "stale":
        old = ts - 6 * 60
        headers = {
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": str(old),
            "HTTP_X_SLACK_SIGNATURE": SignatureVerifier(SECRET).generate_signature(
                timestamp=str(old), body=body
            ),
        }
    else:
        headers = {}
    before = snapshot(warning.lead)

    response = client.post(
        "/slack/events", data=body, content_type="application/x-www-form-urlencoded", **headers
    )

    assert response.status_code == 401
    assert snapshot(warning.lead) == before
    assert not slack.requests and not slack_audits()


def test_without_slack_configured_the_url_answers_404_with_the_reason(client, settings):
    settings.SLACK_BOT_TOKEN = ""
    response = client.post("/slack/events", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert (
        response.content == b"Slack is not configured on this server (SLACK_BOT_TOKEN is empty).\n"
    )


def test_the_events_url_answers_slacks_url_verification(client, slack):
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    response = signed_post(client, body, "application/json")
    assert response.status_code == 200
    assert response.json() == {"challenge": "c-123"}


# --- the App Home ---------------------------------------------------------------------------------


@pytest.fixture
def lenas_leads(org, policies, seed_lead):
    """At 10:20 on Monday: A (the seed lead, 08:00, 1h) breached; B at risk; C and C2 on track
    (C2 with less time left); D on hold; plus a closed lead of Lena's and one of Felix's."""

    def lead(name, at, source, **kwargs):
        with time_machine.travel(at, tick=False):
            return make_lead(team=org.berlin_team, source=source, name=name, **kwargs)

    monday = after(WARN_AT, minutes=-108)  # 08:00
    b = lead("Bea at risk", after(monday, minutes=110), org.inbound_web, owner=org.lena)
    SlaTimer.objects.filter(lead=b).update(stage="warned")  # as the sweep would have
    c = lead("Carl on track", after(monday, minutes=130), org.inbound_web, owner=org.lena)
    c2 = lead("Cleo on track", after(monday, minutes=100), org.inbound_web, owner=org.lena)
    d = lead("Dora on hold", after(monday, minutes=120), org.paid_social, owner=org.lena)
    with time_machine.travel(after(monday, minutes=125), tick=False):
        lifecycle.put_on_hold(d, actor=org.lena, reason="customer on holiday")
    closed = lead("Ed closed", after(monday, minutes=60), org.paid_social, owner=org.lena)
    with time_machine.travel(after(monday, minutes=61), tick=False):
        lifecycle.record_activity(closed, "disqualify", actor=org.lena, reason="spam")
    lead("Fay of Felix", after(monday, minutes=60), org.paid_social, owner=org.felix)
    return {"A": seed_lead, "B": b, "C": c, "C2": c2, "D": d}


def home_sections(view: dict) -> list[str]:
    return [
        b["text"]["text"]
        for b in view["blocks"]
        if b["type"] == "section" and b.get("block_id", "").startswith("lead_")
    ]


def test_app_home_opened_publishes_the_reps_open_leads_most_urgent_first(
    client, slack, lenas_leads
):
    with time_machine.travel(after(WARN_AT, minutes=32), tick=False):  # 10:20
        response = signed_post(client, home_event(), "application/json")

    assert response.status_code == 200
    [published] = slack.calls("views.publish")
    assert published.json["user_id"] == "ULENA"
    sections = home_sections(published.json["view"])
    names = [s.split("*")[1] for s in sections]
    assert names == [
        "Aisha Al-Mansoori",
        "Bea at risk",
        "Cleo on track",
        "Carl on track",
        "Dora on hold",
    ]
    assert "*breached*: SLA breached, overdue by 20 minutes (due 10:00)" in sections[0]
    assert "*at risk*: SLA breach in 1 hour 30 minutes" in sections[1]
    assert "*paused*: SLA paused (on hold)" in sections[4]
    actions = [b for b in published.json["view"]["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "lead_open",
        "lead_log_call",
        "lead_log_email",
        "lead_disqualify",
    ]
    value = json.loads(actions[0]["elements"][1]["value"])
    assert value == {
        "lead_id": lenas_leads["A"].pk,
        "timer_id": SlaTimer.objects.get(lead=lenas_leads["A"], completed_at__isnull=True).pk,
        "notification_id": None,
    }


def test_the_messages_tab_publishes_nothing(client, slack, org):
    assert signed_post(client, home_event(tab="messages"), "application/json").status_code == 200
    assert not slack.calls("views.publish")


def test_an_unlinked_slack_user_sees_how_to_link_their_account(client, slack, org):
    signed_post(client, home_event(user="USTRANGER"), "application/json")
    [published] = slack.calls("views.publish")
    assert "Your Slack account is not linked to a rep" in json.dumps(published.json["view"])


def test_a_button_in_the_app_home_acts_and_refreshes_the_home(client, slack, lenas_leads, org):
    with time_machine.travel(after(WARN_AT, minutes=32), tick=False):
        signed_post(client, home_event(), "application/json")
        [published] = slack.calls("views.publish")
        view = published.json["view"]
        action_block = next(b for b in view["blocks"] if b["type"] == "actions")
        button = action_block["elements"][1]  # log call on the breached lead
        payload = {
            "type": "block_actions",
            "user": {"id": "ULENA", "team_id": "T0"},
            "api_app_id": "A0",
            "token": "legacy-token",
            "team": {"id": "T0", "domain": "acme"},
            "container": {"type": "view", "view_id": "VHOME1"},
            "trigger_id": "1.2.home",
            "view": {**view, "id": "VHOME1", "hash": "hash-1"},
            "actions": [{**button, "block_id": action_block["block_id"], "action_ts": "1.1"}],
        }

        post_interactive(client, payload)
        post_interactive(
            client, {**payload, "actions": [{**payload["actions"][0], "action_ts": "1.2"}]}
        )

    assert Activity.objects.filter(lead=lenas_leads["A"]).count() == 1
    refreshed = slack.calls("views.publish")[1].json["view"]
    notice = next(b for b in refreshed["blocks"] if b.get("block_id") == "notice")
    assert notice["text"]["text"] == "Call logged by Lena Hoffmann at 10:20 CET · SLA met late"
    aisha = next(s for s in home_sections(refreshed) if "Aisha Al-Mansoori" in s)
    assert "CONTACTED since 10:20 CET · *on track*" in aisha  # listed with its new timer
    again = slack.calls("views.publish")[2].json["view"]
    assert next(b for b in again["blocks"] if b.get("block_id") == "notice")["text"][
        "text"
    ].startswith("Already recorded")


@pytest.mark.parametrize("count", [3, 6])
def test_building_the_home_takes_three_queries_whatever_the_number_of_leads(org, policies, count):
    for i in range(count):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
    RepFactory(team=org.berlin_team)  # another rep's leads are not read
    with CaptureQueriesContext(connection) as queries:
        view = home.home_view(org.lena, now=WARN_AT)
    assert len(queries) == 3  # leads, their market(s), their open timers
    assert len(home_sections(view)) == count


def test_slack_failing_after_the_ack_leaves_the_action_recorded(
    client, slack, warning, at_warn_time
):
    slack.then(Reply(500, "internal_error"))  # the response_url post fails

    response = post_interactive(client, click(warning, slack, "lead_log_call"))

    assert response.status_code == 200
    assert len(responses(slack)) == 1  # tried once: no retries inside the task
    assert Activity.objects.filter(lead=warning.lead).count() == 1
    assert Lead.objects.get(pk=warning.lead_id).state == "CONTACTED"


def test_the_app_calls_slack_under_the_outbox_client_rules(slack):
    app_client = request_handler().app.client
    for client in (app_client, web_client(), webhook_client(slack.response_url())):
        assert client.timeout == HTTP_TIMEOUT_SECONDS
        assert client.retry_handlers == []
    assert app_client.base_url == slack.url
