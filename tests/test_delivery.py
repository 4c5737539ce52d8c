"""Outbox delivery at the wire: a fake Slack Web API and a fake Teams webhook on 127.0.0.1,
Django's locmem mail backend, time travel for leases, backoff and Retry-After."""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import transaction

from audit.models import AuditEvent
from escalations import links
from escalations.models import MessageKind, Notification, Persona, SlaTimer
from escalations.notify import delivery, outbox
from escalations.notify.delivery import backoff, claim, claim_row, deliver_due, enqueue_delivery
from escalations.notify.ratelimit import DestinationLimiter
from escalations.sweep import run_sweep
from leadops import lifecycle
from tests.conftest import berlin
from tests.factories import make_lead
from tests.fakes import Faults, Reply
from tests.notify_fixtures import DUE_AT, WARN_AT, after, sweep_at

SEED_SENTENCE = (
    "Aisha Al-Mansoori from Emirates Group, in NEW since 08:00, SLA breach in 12 minutes."
)


def _row(row) -> Notification:
    return Notification.objects.get(pk=row.pk)


def _extra_row(
    lead,
    key,
    *,
    now,
    recipient=None,
    kind=MessageKind.REASSIGNED_TEAM,
    persona=Persona.MANAGER,
    context=None,
) -> Notification:
    with transaction.atomic():
        outbox.add(
            [
                outbox.message(
                    key=key,
                    kind=kind,
                    persona=persona,
                    lead=lead,
                    now=now,
                    recipient=recipient,
                    context=context or {},
                )
            ]
        )
    return Notification.objects.get(dedupe_key=key)


# --- the happy path, exactly as Slack sees it -----------------------------------------------------


def test_warning_is_posted_to_the_owners_dm_with_context_fields_and_buttons(
    slack_on, warning, seed_lead, org
):
    result = deliver_due(now=WARN_AT, chain=False)

    assert (result.claimed, result.sent, result.failed) == (1, 1, 0)
    [post] = slack_on.posts
    assert post.headers["Authorization"] == "Bearer xoxb-test-token"
    body = post.json
    assert body["channel"] == org.lena.slack_user_id == "ULENA"
    assert body["text"].startswith(f"SLA warning: {SEED_SENTENCE}")
    blocks = {block["block_id"]: block for block in body["blocks"]}
    assert blocks["headline"]["text"]["text"] == f"*SLA warning*\n{SEED_SENTENCE}"
    assert [field["text"] for field in blocks["facts"]["fields"]] == [
        "*Lead*\nAisha Al-Mansoori",
        "*Company*\nEmirates Group",
        "*Market*\nGermany (DE)",
        "*Source*\nPaid social",
        "*State*\nNEW",
        "*Since*\n08:00 CET",
        "*Elapsed*\n48 minutes (business time)",
        "*SLA*\nbreach in 12 minutes (due 10:00)",
        "*Owner*\nLena Hoffmann",
        "*Phone*\n+49 30 1234567",
    ]
    buttons = blocks["lead_actions"]["elements"]
    assert [b["action_id"] for b in buttons] == [
        "lead_open",
        "lead_log_call",
        "lead_log_email",
        "lead_disqualify",
    ]
    timer = SlaTimer.objects.get(lead=seed_lead, completed_at__isnull=True)
    for button in buttons:
        assert json.loads(button["value"]) == {
            "lead_id": seed_lead.pk,
            "timer_id": timer.pk,
            "notification_id": warning.pk,
        }
    link = buttons[0]["url"]
    assert link.startswith("http://testserver/l/")
    assert links.read_token(link.rstrip("/").rsplit("/", 1)[-1]) == (org.lena.pk, seed_lead.pk)
    assert buttons[3]["style"] == "danger"

    row = _row(warning)
    assert (row.status, row.channel, row.destination) == ("sent", "slack", "ULENA")
    [posted] = slack_on.posted()
    assert row.provider_id == posted["ts"]
    assert posted["metadata"] == {
        "event_type": "leadops_notification",
        "event_payload": {"key": warning.dedupe_key},
    }
    assert (row.attempts, row.last_error, row.lease_until) == (1, "", None)
    assert WARN_AT <= row.sent_at < WARN_AT + timedelta(seconds=5)  # the run's clock + send time
    event = AuditEvent.objects.get(kind="notification_sent", lead=seed_lead)
    assert event.occurred_at == row.sent_at
    assert event.timer_id == timer.pk
    assert event.details["channel"] == "slack"
    assert event.details["destination"] == "ULENA"
    assert event.details["provider_id"] == posted["ts"]
    assert event.details["sent_at"] == row.sent_at.isoformat()
    assert event.details["kind"] == "warning"


def test_breach_goes_to_the_team_channel_with_the_admin_link(slack_on, breach, seed_lead, org):
    deliver_due(now=DUE_AT, chain=False)

    [post] = [p.json for p in slack_on.posts if p.json["channel"] == "C0DE"]
    assert "SLA breached" in post["text"]
    assert (
        "Aisha Al-Mansoori from Emirates Group, in NEW since 08:00, SLA breached just now."
        in post["text"]
    )
    buttons = {b["action_id"]: b for b in post["blocks"][-1]["elements"]}
    assert buttons["lead_open"]["url"] == (
        f"http://testserver/admin/leadops/lead/{seed_lead.pk}/change/"
    )
    assert set(buttons) == {"lead_open", "lead_log_call", "lead_log_email", "lead_disqualify"}
    row = _row(breach)
    assert (row.status, row.channel, row.destination, row.recipient_id) == (
        "sent",
        "slack",
        "C0DE",
        org.katrin.pk,
    )


def test_delivery_is_woken_on_commit_and_runs_the_task(
    slack_on, seed_lead, django_capture_on_commit_callbacks
):
    with (
        time_machine.travel(WARN_AT, tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        transaction.atomic(),
    ):
        run_sweep(now=WARN_AT)
    assert callbacks, "the outbox registers a wake-up on commit"
    assert [p["channel"] for p in slack_on.delivered] == ["ULENA"]
    assert Notification.objects.get(lead=seed_lead, kind="warning").status == "sent"


def test_an_enqueue_failure_never_breaks_the_caller(monkeypatch, caplog):
    import django_q.tasks

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(django_q.tasks, "async_task", broken)
    with caplog.at_level(logging.ERROR, logger="escalations.notify.delivery"):
        assert enqueue_delivery() is None
    assert "could not enqueue" in caplog.text


# --- retries, backoff, Retry-After ----------------------------------------------------------------


def test_a_server_error_then_success_sends_one_message(slack_on, warning, settings):
    slack_on.then(Reply(500))

    first = deliver_due(now=WARN_AT, chain=False)
    assert (first.sent, first.retrying) == (0, 1)
    row = _row(warning)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == WARN_AT + timedelta(seconds=settings.NOTIFY_BACKOFF_BASE_SECONDS)
    assert "HTTP 500" in row.last_error

    assert deliver_due(now=after(WARN_AT, seconds=29), chain=False).claimed == 0
    second = deliver_due(now=after(WARN_AT, seconds=30), chain=False)
    assert second.sent == 1
    assert len(slack_on.posts) == 2
    assert len(slack_on.delivered) == 1
    row = _row(warning)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert AuditEvent.objects.filter(kind="notification_sent").count() == 1


def test_a_429_waits_for_retry_after_and_does_not_use_up_an_attempt(slack_on, warning):
    slack_on.then(Reply(429, headers={"Retry-After": "2"}))

    with time_machine.travel(WARN_AT, tick=False) as traveller:
        assert deliver_due().retrying == 1
        row = _row(warning)
        assert row.status == "pending"
        assert row.next_attempt_at == WARN_AT + timedelta(seconds=2)
        assert row.attempts == 0
        assert "rate limit" in row.last_error

        traveller.shift(1)
        assert deliver_due().claimed == 0
        traveller.shift(1)
        assert deliver_due().sent == 1
    assert len(slack_on.delivered) == 1
    assert _row(warning).attempts == 1


def test_backoff_doubles_from_the_base_and_stops_at_the_cap(settings):
    settings.NOTIFY_BACKOFF_BASE_SECONDS = 30
    settings.NOTIFY_BACKOFF_CAP_SECONDS = 3600
    assert [backoff(n).total_seconds() for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]
    assert backoff(1000).total_seconds() == 3600


def test_temporary_errors_fail_after_the_last_attempt_and_the_manager_is_told(
    slack_on, warning, settings, org
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    slack_on.then(Reply(503), Reply(502), Reply(500))

    now = WARN_AT
    assert deliver_due(now=now, chain=False).retrying == 1
    now += timedelta(seconds=30)
    assert deliver_due(now=now, chain=False).retrying == 1
    now += timedelta(seconds=60)
    assert deliver_due(now=now, chain=False).failed == 1

    row = _row(warning)
    assert (row.status, row.attempts) == ("failed", 3)
    event = AuditEvent.objects.get(kind="notification_failed")
    assert event.details["attempts"] == 3
    assert event.details["permanent"] is False
    assert "HTTP 500" in event.details["error"]
    notice = Notification.objects.get(kind="delivery_failed")
    assert notice.dedupe_key == f"failed:{row.pk}"
    assert (notice.persona, notice.recipient_id, notice.status) == (
        "manager",
        org.katrin.pk,
        "pending",
    )


def test_invalid_auth_fails_at_once_is_audited_and_the_manager_hears_elsewhere(
    slack_on, warning, org, caplog
):
    slack_on.then(Reply(200, {"ok": False, "error": "invalid_auth"}))

    result = deliver_due(now=WARN_AT, chain=False)

    assert (result.sent, result.retrying, result.failed) == (0, 0, 1)
    row = _row(warning)
    assert (row.status, row.attempts, row.channel) == ("failed", 1, "slack")
    assert "invalid_auth" in row.last_error
    event = AuditEvent.objects.get(kind="notification_failed", lead=warning.lead)
    assert event.details["permanent"] is True
    assert event.details["destination"] == "ULENA"
    notice = Notification.objects.get(kind="delivery_failed")
    assert notice.dedupe_key == f"failed:{row.pk}"
    assert (notice.persona, notice.recipient_id) == ("manager", org.katrin.pk)
    assert notice.context["transport_down"] is True

    # The token is dead, so the notice avoids Slack altogether (here: the log).
    with caplog.at_level(logging.INFO, logger="escalations.notify.transports"):
        assert deliver_due(now=WARN_AT, chain=False).sent == 1
    notice.refresh_from_db()
    assert (notice.status, notice.channel) == ("sent", "console")
    assert (
        "The SLA warning for Lena Hoffmann could not be delivered by Slack (Slack: invalid_auth)"
        " after 1 attempt." in caplog.text
    )
    assert len(slack_on.posts) == 1


def test_a_failed_delivery_failed_notice_creates_no_further_notice(slack_on, warning):
    slack_on.then(
        Reply(200, {"ok": False, "error": "user_not_found"}),  # the DM to Lena
        Reply(200, {"ok": False, "error": "channel_not_found"}),  # the notice, team channel
    )
    deliver_due(now=WARN_AT, chain=False)
    notice = Notification.objects.get(kind="delivery_failed")
    assert notice.context["transport_down"] is False

    assert deliver_due(now=WARN_AT, chain=False).failed == 1

    notice.refresh_from_db()
    assert notice.status == "failed"
    assert slack_on.posts[1].json["channel"] == "C0DE"
    assert Notification.objects.filter(kind="delivery_failed").count() == 1
    assert AuditEvent.objects.filter(kind="notification_failed").count() == 2


# --- leases and claims ----------------------------------------------------------------------------


def test_a_crash_between_claim_and_send_is_sent_exactly_once_after_the_lease(
    slack_on, warning, settings, monkeypatch
):
    def crash(job, started):
        raise RuntimeError("worker killed before sending")

    monkeypatch.setattr(delivery, "_send_one", crash)
    with pytest.raises(RuntimeError):
        deliver_due(now=WARN_AT, chain=False)
    monkeypatch.undo()

    row = _row(warning)
    lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    assert (row.status, row.attempts, row.lease_until) == ("sending", 1, WARN_AT + lease)
    assert slack_on.posts == []

    assert deliver_due(now=WARN_AT + lease - timedelta(seconds=1), chain=False).claimed == 0
    assert deliver_due(now=WARN_AT + lease + timedelta(seconds=1), chain=False).sent == 1
    assert deliver_due(now=WARN_AT + timedelta(hours=3), chain=False).claimed == 0
    assert len(slack_on.posts) == len(slack_on.delivered) == 1
    row = _row(warning)
    assert (row.status, row.attempts) == ("sent", 2)


def test_two_workers_never_claim_the_same_row(warning):
    lease_until = WARN_AT + timedelta(minutes=2)
    # Both workers read the row as (pending, 0 attempts); only the first compare-and-set wins.
    assert claim_row(warning.pk, "pending", 0, now=WARN_AT, lease_until=lease_until) is True
    assert claim_row(warning.pk, "pending", 0, now=WARN_AT, lease_until=lease_until) is False
    assert claim(WARN_AT, 10) == {}
    row = _row(warning)
    assert (row.status, row.attempts) == ("sending", 1)


def test_one_call_delivers_a_bounded_batch(channels_off, seed_lead):
    for n in range(5):
        _extra_row(seed_lead, f"test:batch:{n}", now=WARN_AT)

    first = deliver_due(now=WARN_AT, limit=2, chain=False)
    assert (first.claimed, first.sent) == (2, 2)
    assert deliver_due(now=WARN_AT, limit=2, chain=False).sent == 2
    assert deliver_due(now=WARN_AT, limit=2, chain=False).sent == 1
    assert deliver_due(now=WARN_AT, limit=2, chain=False).claimed == 0


def test_a_full_batch_in_the_task_queues_the_rest(channels_off, seed_lead, monkeypatch):
    for n in range(3):
        _extra_row(seed_lead, f"test:chain:{n}", now=WARN_AT)
    woken = []
    monkeypatch.setattr(delivery, "enqueue_delivery", lambda: woken.append(1))

    with time_machine.travel(WARN_AT, tick=False):
        deliver_due(limit=2)
        assert woken == [1]
        deliver_due(limit=2)
    assert woken == [1], "a partial batch means nothing is left"


def _to_rep(lead, rep, n, now=WARN_AT) -> Notification:
    return _extra_row(
        lead,
        f"test:to:{rep.pk}:{n}",
        now=now,
        recipient=rep,
        kind=MessageKind.REASSIGNED_TO,
        persona=Persona.NEW_OWNER,
        context={"cause": "manual", "from_rep_id": rep.pk, "to_rep_id": rep.pk},
    )


@pytest.fixture
def paced(settings):
    """Pacing on (the test settings turn it off), from a fresh limiter."""
    settings.NOTIFY_RATE_PER_SECOND = 1.0
    settings.NOTIFY_RATE_BURST = 2
    delivery.limiter().reset()
    yield delivery.limiter()
    delivery.limiter().reset()


def test_sends_to_different_destinations_run_concurrently(slack_on, seed_lead, settings, org):
    settings.NOTIFY_CONCURRENCY = 4
    slack_on.latency = 0.5
    for rep in (org.lena, org.felix, org.jonas, org.katrin):
        _to_rep(seed_lead, rep, 0)

    started = time.monotonic()
    assert deliver_due(now=WARN_AT, chain=False).sent == 4
    assert time.monotonic() - started < 1.5  # one after the other would take 2 s
    assert len(slack_on.delivered) == 4


def test_messages_to_one_destination_go_out_one_at_a_time_in_order(slack_on, seed_lead, settings):
    settings.NOTIFY_CONCURRENCY = 8
    slack_on.latency = 0.05
    rows = [_extra_row(seed_lead, f"test:order:{n}", now=WARN_AT) for n in range(6)]

    assert deliver_due(now=WARN_AT, chain=False).sent == 6

    keys = [m["metadata"]["event_payload"]["key"] for m in slack_on.conversations["C0DE"]]
    assert keys == [r.dedupe_key for r in rows]


def test_a_destination_is_sent_at_its_pace_and_the_rest_waits_in_the_outbox(
    slack_on, seed_lead, org, paced, monkeypatch
):
    monkeypatch.setattr(delivery, "MAX_PACING_WAIT", 0.0)  # never wait in the worker
    to_lena = [_to_rep(seed_lead, org.lena, n) for n in range(4)]
    to_felix = _to_rep(seed_lead, org.felix, 0)

    result = deliver_due(now=WARN_AT, chain=False)

    assert (result.sent, result.retrying) == (3, 2)  # a burst of 2 to Lena, 1 to Felix
    assert [p["channel"] for p in slack_on.delivered].count("ULENA") == 2
    for row in to_lena[2:]:
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 0)
        assert WARN_AT < row.next_attempt_at <= WARN_AT + timedelta(seconds=2)
        assert "paced" in row.last_error
    assert _row(to_felix).status == "sent"


def test_a_429_holds_back_the_destinations_next_messages_until_retry_after(
    slack_on, seed_lead, org, paced
):
    rows = [_to_rep(seed_lead, org.lena, n) for n in range(3)]
    slack_on.then(Reply(429, headers={"Retry-After": "30"}))

    result = deliver_due(now=WARN_AT, chain=False)

    assert (result.sent, result.retrying) == (0, 3)
    assert len(slack_on.posts) == 1, "the two behind it were not tried"
    for row in rows:
        row.refresh_from_db()
        assert (row.status, row.attempts) == ("pending", 0)
        assert row.next_attempt_at >= WARN_AT + timedelta(seconds=29)


def test_the_pace_is_a_token_bucket_per_destination():
    clock = [0.0]
    pace = DestinationLimiter(rate=1.0, burst=2, clock=lambda: clock[0])
    assert pace.take("C1", max_wait=0) == (True, 0.0)
    assert pace.take("C1", max_wait=0) == (True, 0.0)
    assert pace.take("C1", max_wait=0) == (False, 1.0)
    assert pace.take("C2", max_wait=0) == (True, 0.0), "another destination has its own bucket"
    assert pace.take("C1", max_wait=1.0) == (True, 1.0)  # reserved: wait a second
    clock[0] = 10.0
    assert pace.take("C1", max_wait=0) == (True, 0.0)
    pace.block("C1", 5.0)
    assert pace.take("C1", max_wait=0) == (False, 5.0)
    clock[0] = 15.0
    assert pace.take("C1", max_wait=0) == (True, 0.0)


# --- what is never sent, or not yet ---------------------------------------------------------------


def test_superseded_rows_are_never_sent(slack_on, warning, seed_lead, org):
    with time_machine.travel(after(WARN_AT, minutes=1), tick=False):
        lifecycle.record_activity(seed_lead, "call", actor=org.lena)
    assert _row(warning).status == "superseded"

    assert deliver_due(now=after(WARN_AT, minutes=1), chain=False).claimed == 0
    assert slack_on.posts == []


def test_a_claimed_warning_whose_lead_progressed_meanwhile_is_not_retried(
    slack_on, warning, seed_lead, org, settings, monkeypatch
):
    monkeypatch.setattr(delivery, "_send_one", lambda job, started: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        deliver_due(now=WARN_AT, chain=False)
    monkeypatch.undo()
    with time_machine.travel(after(WARN_AT, minutes=1), tick=False):
        lifecycle.record_activity(seed_lead, "email", actor=org.lena)

    later = WARN_AT + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1)
    result = deliver_due(now=later, chain=False)

    assert (result.claimed, result.superseded, result.sent) == (1, 1, 0)
    row = _row(warning)
    assert row.status == "superseded"
    assert "timer finished" in row.last_error
    assert slack_on.posts == []


def test_a_message_for_quiet_hours_waits_for_the_reps_next_working_period(slack_on, seed_lead, org):
    evening = berlin(2026, 3, 2, 19, 0)
    row = _extra_row(
        seed_lead,
        "test:quiet",
        now=evening,
        recipient=org.lena,
        kind=MessageKind.REASSIGNED_TO,
        persona=Persona.NEW_OWNER,
        context={"cause": "manual", "from_rep_id": org.felix.pk, "to_rep_id": org.lena.pk},
    )
    tuesday_9 = berlin(2026, 3, 3, 9, 0)
    assert row.next_attempt_at == tuesday_9

    assert deliver_due(now=evening, chain=False).claimed == 0
    assert deliver_due(now=tuesday_9 - timedelta(seconds=1), chain=False).claimed == 0
    assert deliver_due(now=tuesday_9, chain=False).sent == 1
    assert [p["channel"] for p in slack_on.delivered] == ["ULENA"]


def test_a_warning_held_for_quiet_hours_is_superseded_when_the_breach_fires_first(
    slack_on, seed_lead, org
):
    org.lena.hours = {"mon": ["09:00-09:30"], "tue": ["09:00-18:00"]}
    org.lena.save()
    sweep_at(WARN_AT)
    held = Notification.objects.get(lead=seed_lead, kind="warning")
    assert held.next_attempt_at == berlin(2026, 3, 3, 9, 0)
    sweep_at(DUE_AT)

    deliver_due(now=berlin(2026, 3, 3, 9, 0), chain=False)

    assert _row(held).status == "superseded"
    assert [p["channel"] for p in slack_on.delivered] == ["C0DE"]  # only the breach


def test_messages_to_an_inactive_rep_are_not_sent(slack_on, seed_lead, org):
    row = _extra_row(
        seed_lead,
        "test:inactive",
        now=WARN_AT,
        recipient=org.felix,
        kind=MessageKind.REASSIGNED_FROM,
        persona=Persona.OLD_OWNER,
        context={"cause": "manual", "from_rep_id": org.felix.pk, "to_rep_id": org.lena.pk},
    )
    org.felix.active = False
    org.felix.save()

    assert deliver_due(now=WARN_AT, chain=False).superseded == 1
    assert _row(row).status == "superseded"
    assert slack_on.posts == []


# --- the other channels ---------------------------------------------------------------------------


def test_without_slack_the_owner_gets_an_adaptive_card_on_the_teams_webhook(
    channels_off, fake_teams, warning, org
):
    org.berlin_team.teams_webhook_url = fake_teams.url
    org.berlin_team.save()

    assert deliver_due(now=WARN_AT, chain=False).sent == 1

    [request] = fake_teams.requests
    assert request.path == "/webhook/teams-test"
    assert request.headers["Content-Type"].startswith("application/json")
    body = request.json
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    texts = [item.get("text") for item in card["body"]]
    assert "SLA warning" in texts
    assert "For Lena Hoffmann" in texts
    assert SEED_SENTENCE in texts
    facts = {f["title"]: f["value"] for f in card["body"][4]["facts"]}
    assert facts["Owner"] == "Lena Hoffmann"
    assert facts["SLA"] == "breach in 12 minutes (due 10:00)"
    [action] = card["actions"]
    assert action["type"] == "Action.OpenUrl"
    assert action["url"].startswith("http://testserver/l/")
    row = _row(warning)
    assert (row.status, row.channel, row.destination) == ("sent", "teams", "teams:de-berlin")
    assert fake_teams.url not in json.dumps(
        AuditEvent.objects.get(kind="notification_sent").details
    )


def test_a_teams_webhook_refusal_fails_at_once(channels_off, fake_teams, warning, org):
    org.berlin_team.teams_webhook_url = fake_teams.url
    org.berlin_team.save()
    fake_teams.then(Reply(404, "Webhook not found"))

    assert deliver_due(now=WARN_AT, chain=False).failed == 1
    row = _row(warning)
    assert row.status == "failed"
    assert "HTTP 404" in row.last_error


def test_a_teams_server_error_is_retried(channels_off, fake_teams, warning, org):
    org.berlin_team.teams_webhook_url = fake_teams.url
    org.berlin_team.save()
    fake_teams.then(Reply(502, "Bad gateway"))

    assert deliver_due(now=WARN_AT, chain=False).retrying == 1
    assert deliver_due(now=after(WARN_AT, seconds=30), chain=False).sent == 1
    assert len(fake_teams.requests) == 2


def test_without_slack_or_teams_the_owner_gets_an_email_with_text_and_html(
    channels_off, warning, settings
):
    settings.EMAIL_ENABLED = True

    assert deliver_due(now=WARN_AT, chain=False).sent == 1

    [message] = mail.outbox
    assert message.to == ["lena@example.com"]
    assert message.subject == "[LeadOps] SLA warning: Aisha Al-Mansoori (Emirates Group)"
    assert SEED_SENTENCE in message.body
    assert "Company: Emirates Group" in message.body
    assert "http://testserver/l/" in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    assert SEED_SENTENCE in html
    assert 'href="tel:+49%2030%201234567"' in html
    row = _row(warning)
    assert (row.channel, row.destination) == ("email", "lena@example.com")
    assert row.provider_id == message.extra_headers["Message-ID"].strip("<>")


def test_the_breach_goes_to_the_managers_email_without_slack_or_teams(
    channels_off, breach, settings
):
    settings.EMAIL_ENABLED = True
    deliver_due(now=DUE_AT, chain=False)
    assert [m.to for m in mail.outbox] == [["katrin@example.com"]]
    assert mail.outbox[0].subject.startswith("[LeadOps] SLA breached: ")


def test_with_nothing_configured_messages_go_to_the_log(channels_off, warning, caplog):
    with caplog.at_level(logging.INFO, logger="escalations.notify.transports"):
        assert deliver_due(now=WARN_AT, chain=False).sent == 1
    assert SEED_SENTENCE in caplog.text
    row = _row(warning)
    assert (row.status, row.channel, row.destination, row.provider_id) == (
        "sent",
        "console",
        "log",
        "",
    )
    assert mail.outbox == []


def test_an_unreachable_slack_is_a_temporary_error(settings, warning):
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.SLACK_API_URL = "http://127.0.0.1:9/api/"  # discard port: connection refused
    assert deliver_due(now=WARN_AT, chain=False).retrying == 1
    row = _row(warning)
    assert row.status == "pending"
    assert "Slack unreachable" in row.last_error


# --- several workers at once (PostgreSQL) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_message_exactly_once(settings, fake_slack, org, policies):
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: real row locks and several connections")
    settings.SLACK_BOT_TOKEN = "xoxb-test-token"
    settings.SLACK_API_URL = fake_slack.url
    settings.NOTIFY_CONCURRENCY = 2
    fake_slack.latency = 0.01
    with time_machine.travel(berlin(2026, 3, 2, 9, 0), tick=False):
        lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    # Written directly (not through outbox.add) so no on-commit wake-up delivers them first.
    Notification.objects.bulk_create(
        [
            Notification(
                dedupe_key=f"test:workers:{n}",
                kind=MessageKind.REASSIGNED_TEAM,
                persona=Persona.MANAGER,
                lead=lead,
                team=org.berlin_team,
                next_attempt_at=WARN_AT,
                created_at=WARN_AT,
            )
            for n in range(60)
        ]
    )
    errors = []

    def worker():
        try:
            while deliver_due(now=WARN_AT, limit=7, chain=False).claimed:
                pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    ids = [
        json.loads(p["blocks"][-1]["elements"][0]["value"])["notification_id"]
        for p in fake_slack.delivered
    ]
    assert len(ids) == len(set(ids)) == 60
    assert Notification.objects.filter(status="sent").count() == 60
    assert AuditEvent.objects.filter(kind="notification_sent").count() == 60


def test_the_fake_slack_answers_auth_test_for_slack_clients(fake_slack):
    from slack_sdk import WebClient

    response = WebClient(token="xoxb-test", base_url=fake_slack.url).auth_test()
    assert response["ok"] is True
    assert response["user_id"] == "UBOT"


def test_a_send_is_not_started_when_the_lease_is_running_out(
    slack_on, seed_lead, settings, monkeypatch
):
    settings.NOTIFY_LEASE_SECONDS = 5  # sends may start during the first 2.5 s only
    settings.NOTIFY_CONCURRENCY = 1
    clock = [1000.0]
    monkeypatch.setattr(delivery, "monotonic", lambda: clock[0])
    real_send = delivery.transports.SlackTransport.send

    def slow_send(self, message, **kwargs):  # each send takes one second on the fake clock
        clock[0] += 1.0
        return real_send(self, message, **kwargs)

    monkeypatch.setattr(delivery.transports.SlackTransport, "send", slow_send)
    rows = [_extra_row(seed_lead, f"test:lease:{n}", now=WARN_AT) for n in range(5)]

    result = deliver_due(now=WARN_AT, chain=False)

    assert (result.sent, result.retrying) == (3, 2)  # started at 0, 1 and 2 s; not at 3 and 4
    for late in rows[3:]:
        late.refresh_from_db()
        assert (late.status, late.attempts, late.next_attempt_at) == ("pending", 0, WARN_AT)
        assert "lease was running out" in late.last_error
    assert len(slack_on.posts) == 3


# --- unknown outcomes: a timeout or a reset after sending (issue 14, item 3) ----------------------


@pytest.fixture
def short_timeout(monkeypatch):
    """The client gives up after 0.25 s; a reply `delay`ed by 0.6 s arrives too late."""
    monkeypatch.setattr(delivery.transports, "HTTP_TIMEOUT_SECONDS", 0.25)
    return 0.6


def _posted_keys(fake) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in fake.posted()]


def test_a_post_answered_after_the_client_timeout_is_found_and_not_posted_again(
    slack_on, warning, short_timeout
):
    slack_on.then(Reply(200, delay=short_timeout))  # Slack posts it, the answer comes late

    first = deliver_due(now=WARN_AT, chain=False)

    assert (first.sent, first.retrying, first.failed) == (0, 1, 0)
    row = _row(warning)
    assert (row.status, row.unsure_since) == ("pending", WARN_AT)
    assert "outcome unknown" in row.last_error
    assert _posted_keys(slack_on) == [warning.dedupe_key]

    second = deliver_due(now=after(WARN_AT, seconds=30), chain=False)

    assert second.sent == 1
    assert _posted_keys(slack_on) == [warning.dedupe_key], "posted once"
    assert len(slack_on.posts) == 1, "found by looking, not posted again"
    [look] = [r for r in slack_on.requests if r.method == "conversations.history"]
    assert look.json["channel"] == "DULENA"
    assert look.json["include_all_metadata"] in ("1", "true", "True")
    row = _row(warning)
    assert (row.status, row.unsure_since) == ("sent", None)
    assert row.provider_id == slack_on.posted()[0]["ts"]
    assert AuditEvent.objects.filter(kind="notification_sent").count() == 1


def test_a_timeout_where_slack_posted_nothing_is_posted_once_after_looking(
    slack_on, warning, short_timeout
):
    slack_on.then(Reply(500, delay=short_timeout))  # refused, and the answer comes late too

    assert deliver_due(now=WARN_AT, chain=False).retrying == 1
    assert slack_on.posted() == []
    assert deliver_due(now=after(WARN_AT, seconds=30), chain=False).sent == 1

    assert _posted_keys(slack_on) == [warning.dedupe_key]
    methods = [r.method for r in slack_on.requests]
    assert methods == [
        "chat.postMessage",
        "conversations.open",
        "conversations.history",
        "chat.postMessage",
    ]


def test_a_connection_reset_after_slack_posted_is_found_and_not_posted_again(slack_on, warning):
    slack_on.then(Reply(200, drop=True))  # posted, then the connection is reset unanswered

    first = deliver_due(now=WARN_AT, chain=False)

    assert (first.retrying, first.failed) == (1, 0)
    assert "outcome unknown" in _row(warning).last_error
    assert deliver_due(now=after(WARN_AT, seconds=30), chain=False).sent == 1
    assert len(slack_on.posts) == 1
    assert _posted_keys(slack_on) == [warning.dedupe_key]


def test_a_timeout_on_the_last_attempt_is_not_a_failure(slack_on, warning, short_timeout, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    slack_on.then(Reply(200, delay=short_timeout))

    assert deliver_due(now=WARN_AT, chain=False).failed == 0
    assert _row(warning).status == "pending"
    assert not Notification.objects.filter(kind="delivery_failed").exists()

    assert deliver_due(now=after(WARN_AT, seconds=30), chain=False).sent == 1
    assert len(slack_on.posts) == 1
    assert not AuditEvent.objects.filter(kind="notification_failed").exists()
    assert not Notification.objects.filter(kind="delivery_failed").exists()


def test_after_the_last_attempt_timed_out_a_missing_message_fails_without_posting_again(
    slack_on, warning, short_timeout, settings
):
    settings.NOTIFY_MAX_ATTEMPTS = 1
    slack_on.then(Reply(500, delay=short_timeout))

    deliver_due(now=WARN_AT, chain=False)
    assert deliver_due(now=after(WARN_AT, seconds=30), chain=False).failed == 1

    assert len(slack_on.posts) == 1, "the look after the last attempt does not post"
    assert "does not have the message" in _row(warning).last_error
    assert Notification.objects.filter(kind="delivery_failed").count() == 1


def test_a_worker_lost_after_slack_posted_is_not_posted_again_after_the_lease(
    slack_on, warning, settings, monkeypatch
):
    def crash(*args, **kwargs):
        raise RuntimeError("worker killed between Slack's answer and the record")

    monkeypatch.setattr(delivery, "_record_group", crash)
    with pytest.raises(RuntimeError):
        deliver_due(now=WARN_AT, chain=False)
    monkeypatch.undo()
    assert _row(warning).status == "sending"
    assert len(slack_on.posts) == 1

    lease = timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)
    assert deliver_due(now=WARN_AT + lease + timedelta(seconds=1), chain=False).sent == 1

    assert len(slack_on.posts) == 1
    assert _posted_keys(slack_on) == [warning.dedupe_key]
    row = _row(warning)
    assert (row.status, row.provider_id) == ("sent", slack_on.posted()[0]["ts"])


def test_a_flaky_slack_gets_every_message_exactly_once_and_none_is_failed(
    slack_on, seed_lead, short_timeout, settings
):
    """30 % 500s, 10 % 429 with Retry-After, 10 % posted but answered after the timeout."""
    settings.NOTIFY_MAX_ATTEMPTS = 30  # a run of 500s long enough to fail is not the point here
    settings.NOTIFY_CONCURRENCY = 8
    slack_on.faults = Faults(error=0.3, rate_limited=0.1, slow=0.1, slow_by=short_timeout)
    rows = [_extra_row(seed_lead, f"test:flaky:{n}", now=WARN_AT) for n in range(80)]

    now, rounds = WARN_AT, 0
    while Notification.objects.filter(status__in=["pending", "sending"]).exists():
        deliver_due(now=now, limit=100, chain=False)
        now += timedelta(seconds=settings.NOTIFY_BACKOFF_CAP_SECONDS)
        rounds += 1
        assert rounds < 60

    keys = _posted_keys(slack_on)
    assert sorted(keys) == sorted(r.dedupe_key for r in rows), "every message exactly once"
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert not Notification.objects.filter(kind="delivery_failed").exists()
    assert len(slack_on.posts) > len(rows), "the faults happened"
    ts_by_key = {m["metadata"]["event_payload"]["key"]: m["ts"] for m in slack_on.posted()}
    for row in Notification.objects.all():
        assert row.provider_id == ts_by_key[row.dedupe_key]
