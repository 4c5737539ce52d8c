"""Clients for Slack with the outbox's rules (escalations/notify/transports.py): a timeout of
HTTP_TIMEOUT_SECONDS and no retries of their own; and whether Slack is configured at all."""

from __future__ import annotations

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from escalations.notify.transports import HTTP_TIMEOUT_SECONDS


class SlackNotConfigured(Exception):
    """Slack is off on this server; the message says which setting is missing."""


def config_problem() -> str:
    """Why Slack is off ("" when it is on)."""
    if not settings.SLACK_BOT_TOKEN:
        return "Slack is not configured on this server (SLACK_BOT_TOKEN is empty)."
    if not settings.SLACK_SIGNING_SECRET:
        return "Slack is not configured on this server (SLACK_SIGNING_SECRET is empty)."
    return ""


_SETTINGS_TOKEN = object()


def web_client(token=_SETTINGS_TOKEN) -> WebClient:
    """A Web API client with the outbox's rules: bounded timeout, no retries of its own. The
    token is SLACK_BOT_TOKEN unless given (None: set per request by the Bolt App)."""
    return WebClient(
        token=settings.SLACK_BOT_TOKEN if token is _SETTINGS_TOKEN else token,
        base_url=settings.SLACK_API_URL,
        timeout=HTTP_TIMEOUT_SECONDS,
        retry_handlers=[],
    )


def webhook_client(url: str) -> WebhookClient:
    """A client for a payload's `response_url` (no token needed), same rules."""
    return WebhookClient(url, timeout=HTTP_TIMEOUT_SECONDS, retry_handlers=[])
