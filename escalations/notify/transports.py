"""One transport per channel behind one contract (SPEC §8):
`send(message, key=..., unsure_since=...) -> SendResult`, raising `TemporaryError` (try again
later, maybe after `retry_after` seconds),
`UnknownOutcome` (the request went out and no answer came back: it may have been posted) or
`PermanentError` (trying again cannot help). Transports do no database work, so delivery can run
them in threads.

Slack is exactly-once as seen by the reader: every post carries the outbox row's key in its
message `metadata`, and a send after an unknown outcome (`unsure_since` set) first looks for that
key in the destination's `conversations.history`. Teams webhooks and email have no way to ask
what arrived, so after a timeout they are sent again: at least once (see the README).

Which transport a notification takes is decided in `escalations/notify/routing.py`."""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10

# What a Slack message carries so that we can find it again after an unknown outcome.
SLACK_METADATA_EVENT = "leadops_notification"
# conversations.history pages read when looking for a message (200 messages each), and how far
# before the first unsure send the look starts (clock skew between us and Slack).
SLACK_HISTORY_PAGES = 10
SLACK_HISTORY_MARGIN = timedelta(minutes=2)


def http_timeout() -> float:
    """Seconds a provider has to answer one request (read at call time: tests shorten it)."""
    return HTTP_TIMEOUT_SECONDS


SLACK = "slack"
TEAMS = "teams"
EMAIL = "email"
CONSOLE = "console"

# Slack errors that no retry can fix: a wrong channel or user, a bot without access, a dead token.
SLACK_PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "account_inactive",
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "restricted_action",
        "ekm_access_denied",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_arguments",
    }
)
# Of those, the ones that break every Slack message, not only this destination.
SLACK_TRANSPORT_DOWN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "no_permission",
        "ekm_access_denied",
    }
)


class DeliveryError(Exception):
    """A send that did not go through."""

    # True when the whole channel is unusable (e.g. a revoked Slack token), not just one address.
    transport_down = False


class TemporaryError(DeliveryError):
    """Try again later: after `retry_after` seconds when the provider said so. A rate limit
    (`rate_limited`) says nothing about the message, so it does not use up an attempt."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, rate_limited: bool = False
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_limited = rate_limited


class UnknownOutcome(TemporaryError):
    """The request went out but no answer came back (a timeout, a reset connection): the
    provider may have acted on it. Not a failure: delivery looks before sending again."""


def _unknown_outcome(exc: BaseException) -> bool:
    """A network error after which the provider may have the message. Only a refused
    connection, a name that does not resolve or a request never built prove that nothing was
    sent; a timeout or a reset may come after the provider acted."""
    if not isinstance(exc, OSError | http.client.HTTPException):
        return False  # slack_sdk refused the request before sending it
    reason = getattr(exc, "reason", exc)  # urllib wraps connect-time errors in URLError
    return not isinstance(reason, ConnectionRefusedError | socket.gaierror)


class PermanentError(DeliveryError):
    def __init__(self, message: str, *, transport_down: bool = False):
        super().__init__(message)
        self.transport_down = transport_down


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    destination: str


def _retry_after(value) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(seconds, 0.0)


_clients = threading.local()


# --- transports -----------------------------------------------------------------------------------


class SlackTransport:
    """`chat.postMessage` with Block Kit blocks and a plain-text fallback. `target` is a rep's
    Slack user id (a DM from the bot) or a channel id. slack_sdk's own retries are off: the
    outbox's backoff is the only one, so a 429's Retry-After lands in `next_attempt_at`."""

    channel = SLACK

    def __init__(self, target: str):
        self.destination = target

    def _client(self):
        """One client per sending thread and configuration (building one per message cost as
        much CPU as the rest of the send)."""
        from slack_sdk import WebClient

        config = (settings.SLACK_BOT_TOKEN, settings.SLACK_API_URL, http_timeout())
        cached = getattr(_clients, "slack", None)
        if cached is None or cached[0] != config:
            client = WebClient(
                token=config[0], base_url=config[1], timeout=config[2], retry_handlers=[]
            )
            _clients.slack = cached = (config, client)
        return cached[1]

    def send(
        self, message, *, key: str = "", unsure_since: datetime | None = None, post: bool = True
    ) -> SendResult:
        """Post `message`; when an earlier send of it is unsure (`unsure_since`), first look
        for it and post only if it is not there. Without `post`, only look."""
        client = self._client()
        if unsure_since is not None and key:
            found = self._call(lambda: self.find(client, key, unsure_since), "looking")
            if found:
                return SendResult(provider_id=found, destination=self.destination)
            if not post:
                raise PermanentError(
                    "Slack does not have the message: the last attempt's outcome was unknown "
                    "and looking since then found nothing"
                )
        metadata = (
            {"event_type": SLACK_METADATA_EVENT, "event_payload": {"key": key}} if key else None
        )
        response = self._call(
            lambda: client.chat_postMessage(
                channel=self.destination,
                text=message.text,
                blocks=message.slack_blocks(),
                unfurl_links=False,
                unfurl_media=False,
                metadata=metadata,
            ),
            "posting",
        )
        return SendResult(provider_id=str(response.get("ts") or ""), destination=self.destination)

    def _call(self, request, doing: str):
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            return request()
        except SlackApiError as exc:
            raise self._classify(exc) from exc
        except (SlackClientError, OSError, http.client.HTTPException) as exc:
            text = f"Slack unreachable while {doing}: {type(exc).__name__}: {exc}"
            if _unknown_outcome(exc):
                raise UnknownOutcome(f"{text} (outcome unknown)") from exc
            raise TemporaryError(text) from exc

    def find(self, client, key: str, since: datetime) -> str:
        """The ts of our message carrying `key` in the destination since `since`, or "".
        A DM is looked up in the bot's conversation with the user (conversations.open)."""
        channel = self.destination
        if channel.startswith(("U", "W")):
            channel = client.conversations_open(users=channel)["channel"]["id"]
        oldest = f"{(since - SLACK_HISTORY_MARGIN).timestamp():.6f}"
        cursor = None
        for _ in range(SLACK_HISTORY_PAGES):
            page = client.conversations_history(
                channel=channel,
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for item in page.get("messages") or []:
                metadata = item.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if metadata.get("event_type") == SLACK_METADATA_EVENT and payload.get("key") == key:
                    return str(item.get("ts") or "")
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return ""
        raise TemporaryError(
            f"Slack: {SLACK_HISTORY_PAGES * 200} messages since {oldest} and ours not among them "
            "yet; looking again later"
        )

    @staticmethod
    def _classify(exc) -> DeliveryError:
        response = exc.response
        status = response.status_code
        data = response.data if isinstance(response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
        if status == 429 or error == "ratelimited":
            headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            retry_after = _retry_after(headers.get("retry-after"))
            return TemporaryError(
                f"Slack rate limit (429), retry after {retry_after} s",
                retry_after=retry_after if retry_after is not None else 1.0,
                rate_limited=True,
            )
        if error in SLACK_PERMANENT_ERRORS:
            return PermanentError(
                f"Slack: {error}", transport_down=error in SLACK_TRANSPORT_DOWN_ERRORS
            )
        if status >= 500:
            return TemporaryError(f"Slack: HTTP {status}: {error[:200]}")
        if 400 <= status < 500:
            return PermanentError(f"Slack: HTTP {status}: {error[:200]}")
        # An error Slack has not told us is fatal (internal_error, fatal_error, ...): retry.
        return TemporaryError(f"Slack: {error[:200]}")


class TeamsTransport:
    """A Microsoft Teams incoming webhook: an Adaptive Card POSTed as JSON (stdlib only)."""

    channel = TEAMS

    def __init__(self, url: str, label: str):
        self.url = url
        # The webhook URL is a credential: rows and audit name the team, not the URL.
        self.destination = f"teams:{label}"

    def send(self, message, **_) -> SendResult:
        body = json.dumps(
            {
                "type": "message",
                "attachments": [
                    {
                        "contentType": "application/vnd.microsoft.card.adaptive",
                        "contentUrl": None,
                        "content": message.teams_card(),
                    }
                ],
            }
        ).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=http_timeout()) as response:
                response.read()
                provider_id = (
                    response.headers.get("request-id")
                    or response.headers.get("x-ms-request-id")
                    or ""
                )
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:200].decode("utf-8", "replace")
            if exc.code in (408, 429) or exc.code >= 500:
                raise TemporaryError(
                    f"Teams webhook: HTTP {exc.code} {detail}",
                    retry_after=_retry_after(exc.headers.get("Retry-After")),
                    rate_limited=exc.code == 429,
                ) from exc
            raise PermanentError(f"Teams webhook: HTTP {exc.code} {detail}") from exc
        except OSError as exc:  # URLError, timeouts, refused connections
            raise TemporaryError(f"Teams webhook unreachable: {exc}") from exc
        return SendResult(provider_id=provider_id[:100], destination=self.destination)


class EmailTransport:
    """Django's mail: plain text with an HTML alternative."""

    channel = EMAIL

    def __init__(self, address: str):
        self.destination = address

    def send(self, message, **_) -> SendResult:
        message_id = make_msgid(domain=DNS_NAME)
        mail = EmailMultiAlternatives(
            subject=message.email_subject(),
            body=message.email_text(),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[self.destination],
            headers={"Message-ID": message_id},
        )
        mail.attach_alternative(message.email_html(), "text/html")
        try:
            mail.send(fail_silently=False)
        except (
            smtplib.SMTPRecipientsRefused,
            smtplib.SMTPSenderRefused,
            smtplib.SMTPAuthenticationError,
        ) as exc:
            raise PermanentError(f"email: {type(exc).__name__}: {exc}") from exc
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
            raise TemporaryError(f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryError(f"email: {type(exc).__name__}: {exc}") from exc
        return SendResult(provider_id=message_id.strip("<>")[:100], destination=self.destination)


class ConsoleTransport:
    """The log: the default when no channel is configured, and the last fallback."""

    channel = CONSOLE
    destination = "log"

    def __init__(self, recipient: str = ""):
        self.recipient = recipient

    def send(self, message, **_) -> SendResult:
        logger.info("notification for %s: %s", self.recipient or "the team", message.text)
        return SendResult(provider_id="", destination=self.destination)
