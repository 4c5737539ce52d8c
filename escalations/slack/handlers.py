"""The Slack app's listeners: thin. Each reads the payload, calls one verb of
`escalations.actions` (who may act, once per key, audited there) and queues what Slack must be
told afterwards (`tasks.later`); see app.py for why that runs after the ack."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError, SlackClientError

from escalations import actions
from escalations.notify.messages import (
    ACTION_DISQUALIFY,
    ACTION_LOG_CALL,
    ACTION_LOG_EMAIL,
    ACTION_OPEN,
)
from escalations.slack import blocks
from escalations.slack.tasks import later

logger = logging.getLogger(__name__)


def register(app) -> None:
    app.action(ACTION_OPEN)(acknowledge)
    app.action(ACTION_LOG_CALL)(log_call)
    app.action(ACTION_LOG_EMAIL)(log_email)
    app.action(ACTION_DISQUALIFY)(ask_disqualify_reason)
    app.view(blocks.DISQUALIFY_CALLBACK)(submit_disqualify)
    app.event("app_home_opened")(home_opened)


# --- where to tell the user -----------------------------------------------------------------------


def _user(body: dict) -> str:
    return (body.get("user") or {}).get("id", "")


def _from_home(body: dict) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _tell(body: dict, text: str) -> None:
    """An ephemeral note where the click happened: under the message, or atop the Home."""
    if body.get("response_url"):
        later("post_response", body["response_url"], blocks.ephemeral(text))
    elif _from_home(body):
        later("publish_home", _user(body), text)
    else:
        logger.warning("Slack action without a place to answer: %s", text)


def _is_retry(request) -> bool:
    return bool(request.headers.get("x-slack-retry-num"))


def _after(user_id: str, outcome, *, response_url: str, update: dict | None) -> None:
    """A recorded action: replace the message's buttons with what was done, refresh the Home of
    whoever acted (and of the owner, when someone else acted on their lead)."""
    if response_url and update is not None:
        later("post_response", response_url, update)
    later("publish_home", user_id, outcome.summary)
    owner = outcome.lead.owner
    if owner is not None and owner.slack_user_id and owner.slack_user_id != user_id:
        later("publish_home", owner.slack_user_id)


# --- buttons --------------------------------------------------------------------------------------


def acknowledge(ack) -> None:
    """`lead_open` is a URL button: Slack opens the link; nothing to do but acknowledge."""
    ack()


def log_call(ack, body, action, request) -> None:
    ack()
    _log(body, action, request, "call")


def log_email(ack, body, action, request) -> None:
    ack()
    _log(body, action, request, "email")


def _log(body: dict, action: dict, request, what: str) -> None:
    try:
        value = blocks.parse_value(action.get("value"))
    except blocks.BadPayload as exc:
        _tell(body, f"Nothing was recorded: {exc}.")
        return
    try:
        outcome = actions.act_by_slack(
            _user(body),
            value.lead_id,
            what,
            key=blocks.action_key(body, action, value),
            expect_timer_id=value.timer_id,
            action_id=action.get("action_id", ""),
        )
    except actions.Refused as exc:
        _tell(body, str(exc))
        return
    if outcome.recorded:
        message = body.get("message") or {}
        update = blocks.acted_message(
            blocks=message.get("blocks") or [],
            text=message.get("text") or "",
            summary=outcome.summary,
        )
        _after(_user(body), outcome, response_url=body.get("response_url") or "", update=update)
    elif not _is_retry(request):  # a double click; a retry of our own answer says nothing
        _tell(body, f"Already recorded, so nothing new was recorded: {outcome.summary}.")


def ask_disqualify_reason(ack, body, action, client) -> None:
    """Open the modal that asks the (required) reason; its submission disqualifies."""
    ack()
    try:
        value = blocks.parse_value(action.get("value"))
        lead = actions.check_slack(
            _user(body), value.lead_id, expect_timer_id=value.timer_id, action_id=ACTION_DISQUALIFY
        )
    except (blocks.BadPayload, actions.Refused) as exc:
        _tell(body, str(exc))
        return
    # In the request, not after: the trigger_id expires 3 s after the click.
    try:
        client.views_open(
            trigger_id=body.get("trigger_id", ""),
            view=blocks.disqualify_modal(lead, blocks.origin_metadata(body, value)),
        )
    except (SlackApiError, SlackClientError, OSError) as exc:
        logger.warning("views.open failed: %s", exc)
        _tell(body, "Slack could not open the form in time: click Disqualify again.")


def submit_disqualify(ack, body, view) -> None:
    try:
        origin, value = blocks.read_metadata(view)
    except blocks.BadPayload as exc:
        ack(response_action="update", view=blocks.notice_modal("Nothing recorded", str(exc)))
        return
    try:
        outcome = actions.act_by_slack(
            _user(body),
            value.lead_id,
            "disqualify",
            key=blocks.submission_key(view),
            expect_timer_id=value.timer_id,
            action_id=ACTION_DISQUALIFY,
            reason=blocks.submitted_reason(view),
        )
    except actions.Refused as exc:
        if exc.field == "reason":
            ack(response_action="errors", errors={blocks.REASON_BLOCK: str(exc)})
        else:
            ack(response_action="update", view=blocks.notice_modal("Nothing recorded", str(exc)))
        return
    ack()
    if outcome.recorded:
        update = blocks.acted_message(
            blocks=origin.get("blocks") or [],
            text=origin.get("text") or "",
            summary=outcome.summary,
            keep=origin.get("open") or [],
        )
        _after(_user(body), outcome, response_url=origin.get("response_url") or "", update=update)


# --- events ---------------------------------------------------------------------------------------


def home_opened(event) -> None:
    if event.get("tab") == "home" and event.get("user"):
        later("publish_home", event["user"])
