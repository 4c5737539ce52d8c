"""The Bolt App, built lazily on the first request from settings, once per configuration
(SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL); without a token or a signing secret
there is no App and `/slack/events` answers 404 with the reason.

Settings (STACK.md): signature verification on (a forged or >5-minute-old request gets 401 before
any listener runs); the bot token comes from an `authorize` callable, so no `auth.test` call
at start-up nor in a request; `process_before_response=True`, so listeners run inside the Django
request and the 200 goes back when they return.

Acknowledging in time (Slack wants the 200 within 3 s): a listener does only the database work
(a few milliseconds) before returning; everything that talks to Slack afterwards (updating the
message through `response_url`, ephemeral notes, publishing the Home) is queued as a django-q2
task (`tasks.py`). We chose this over `process_before_response=False` (Bolt running listeners
on its own thread pool after the ack) because the queued work survives a restart of the web
process, is retried by the cluster like any task, and keeps database connections in Django's
request and task lifecycles instead of unmanaged threads; and the action itself is committed
before Slack sees the 200, so a Slack retry only happens when we really failed. The one call
that must happen in the request is `views.open` for the disqualify modal: its `trigger_id`
expires 3 s after the click. Every call uses the outbox's client rules: a timeout of
`transports.HTTP_TIMEOUT_SECONDS` and no retries inside a request."""

from __future__ import annotations

import threading

from django.conf import settings
from slack_bolt import App
from slack_bolt.adapter.django import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult

from escalations.slack import handlers
from escalations.slack.clients import SlackNotConfigured, config_problem, web_client

__all__ = ["SlackNotConfigured", "request_handler"]


def _authorize(enterprise_id, team_id):
    """One workspace, one bot token from settings. An `authorize` callable instead of `token=`:
    with a token Bolt calls `auth.test` inside the first request (and answers an unprocessed 200
    when Slack does not answer it), which would put a Slack round trip before the ack."""
    return AuthorizeResult(
        enterprise_id=enterprise_id, team_id=team_id, bot_token=settings.SLACK_BOT_TOKEN
    )


_lock = threading.Lock()
_built: dict[tuple, SlackRequestHandler] = {}


def request_handler() -> SlackRequestHandler:
    """The Django adapter around the App for the current settings (built on first use)."""
    problem = config_problem()
    if problem:
        raise SlackNotConfigured(problem)
    key = (settings.SLACK_BOT_TOKEN, settings.SLACK_SIGNING_SECRET, settings.SLACK_API_URL)
    with _lock:
        handler = _built.get(key)
        if handler is None:
            app = App(
                name="leadops",
                signing_secret=settings.SLACK_SIGNING_SECRET,
                client=web_client(token=None),
                authorize=_authorize,
                request_verification_enabled=True,
                token_verification_enabled=False,
                process_before_response=True,
            )
            handlers.register(app)
            handler = SlackRequestHandler(app)
            _built.clear()  # settings changed (tests): the old App is not used again
            _built[key] = handler
    return handler
