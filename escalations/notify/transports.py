"""One transport per channel behind one contract (SPEC §8): `send(message) -> SendResult`, raising
`TemporaryError` (try again later, maybe after `retry_after` seconds) or `PermanentError` (trying
again cannot help). Transports do no database work, so delivery can run them in threads.

Which transport a notification takes is decided in `escalations/notify/routing.py`."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10

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


# --- transports -----------------------------------------------------------------------------------


class SlackTransport:
    """`chat.postMessage` with Block Kit blocks and a plain-text fallback. `target` is a rep's
    Slack user id (a DM from the bot) or a channel id. slack_sdk's own retries are off: the
    outbox's backoff is the only one, so a 429's Retry-After lands in `next_attempt_at`."""

    channel = SLACK

    def __init__(self, target: str):
        self.destination = target

    def _client(self):
        from slack_sdk import WebClient

        return WebClient(
            token=settings.SLACK_BOT_TOKEN,
            base_url=settings.SLACK_API_URL,
            timeout=HTTP_TIMEOUT_SECONDS,
            retry_handlers=[],
        )

    def send(self, message) -> SendResult:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self._client().chat_postMessage(
                channel=self.destination,
                text=message.text,
                blocks=message.slack_blocks(),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise self._classify(exc) from exc
        except (SlackClientError, OSError) as exc:  # connection refused, timeout, DNS...
            raise TemporaryError(f"Slack unreachable: {type(exc).__name__}: {exc}") from exc
        return SendResult(provider_id=str(response.get("ts") or ""), destination=self.destination)

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

    def send(self, message) -> SendResult:
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
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:
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

    def send(self, message) -> SendResult:
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

    def send(self, message) -> SendResult:
        logger.info("notification for %s: %s", self.recipient or "the team", message.text)
        return SendResult(provider_id="", destination=self.destination)
