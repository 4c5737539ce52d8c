"""Reading what Slack sends (button values, idempotency keys, modal state) and building what we
send back (the disqualify modal, a notice modal, the acted-on message)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from escalations.actions import slack_key
from escalations.notify.messages import ACTION_OPEN, slack_escape

DISQUALIFY_CALLBACK = "lead_disqualify_submit"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
ACTIONS_BLOCK = "lead_actions"  # the message's buttons (escalations/notify/messages.py)
OUTCOME_BLOCK = "lead_outcome"
METADATA_LIMIT = 3000  # Slack's limit on a view's private_metadata


class BadPayload(Exception):
    """The payload is not what our buttons and views send; the message says what is wrong."""


@dataclass(frozen=True)
class ButtonValue:
    lead_id: int
    timer_id: int | None
    notification_id: int | None


def _id(value, name: str, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadPayload(f"{name} must be a positive integer")
    return value


def parse_value(raw) -> ButtonValue:
    """A button's value: {"lead_id": 12, "timer_id": 34 | null, "notification_id": 56 | null}."""
    try:
        data = json.loads(raw) if isinstance(raw, str) and len(raw) <= 2000 else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadPayload("this button carries no lead (it was not made by LeadOps)")
    return ButtonValue(
        lead_id=_id(data.get("lead_id"), "lead_id", optional=False),
        timer_id=_id(data.get("timer_id"), "timer_id", optional=True),
        notification_id=_id(data.get("notification_id"), "notification_id", optional=True),
    )


def action_key(body: dict, action: dict, value: ButtonValue) -> str:
    """The idempotency key of a button click. In a message: the message and the button (one
    "Log call" per message, so a double click and a retry both find it taken; after an action
    the message loses its buttons anyway). In the App Home: the published view's hash, which
    changes each time the Home is republished after an action. `action_ts` alone would not do:
    each click of a double click has its own."""
    action_id = action.get("action_id", "")
    container = body.get("container") or {}
    if container.get("type") == "message" and container.get("message_ts"):
        return slack_key("msg", container.get("channel_id", ""), container["message_ts"], action_id)
    view = body.get("view") or {}
    if view.get("id"):
        return slack_key("view", view["id"], view.get("hash", ""), action_id, value.lead_id)
    user = (body.get("user") or {}).get("id", "")
    return slack_key("act", user, action.get("action_ts", ""), action_id, value.lead_id)


def submission_key(view: dict) -> str:
    """A modal is submitted once: its view id (a retry carries the same)."""
    return slack_key("submit", view.get("id", ""))


# --- the disqualify modal -------------------------------------------------------------------------


def origin_metadata(body: dict, value: ButtonValue) -> str:
    """What the modal must remember of the click: the lead, its timer, where to tell the result
    (the message's response_url and its blocks without buttons, or the Home), within Slack's
    3,000 characters."""
    message = body.get("message") or {}
    data = {
        "lead_id": value.lead_id,
        "timer_id": value.timer_id,
        "notification_id": value.notification_id,
        "response_url": body.get("response_url") or "",
        "text": (message.get("text") or "")[:1000],
        "blocks": [b for b in message.get("blocks") or [] if b.get("block_id") != ACTIONS_BLOCK],
        "open": open_buttons(message.get("blocks") or []),
    }
    encoded = json.dumps(data, separators=(",", ":"))
    if len(encoded) > METADATA_LIMIT:
        data["blocks"], data["open"] = [], []
        encoded = json.dumps(data, separators=(",", ":"))
    return encoded


def read_metadata(view: dict) -> tuple[dict, ButtonValue]:
    try:
        data = json.loads(view.get("private_metadata") or "")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise BadPayload("this form was not opened by LeadOps")
    value = ButtonValue(
        lead_id=_id(data.get("lead_id"), "lead_id", optional=False),
        timer_id=_id(data.get("timer_id"), "timer_id", optional=True),
        notification_id=_id(data.get("notification_id"), "notification_id", optional=True),
    )
    return data, value


def submitted_reason(view: dict) -> str:
    values = (view.get("state") or {}).get("values") or {}
    field = (values.get(REASON_BLOCK) or {}).get(REASON_INPUT) or {}
    reason = field.get("value")
    return reason if isinstance(reason, str) else ""


def disqualify_modal(lead, metadata: str) -> dict:
    company = f" · {slack_escape(lead.company)}" if lead.company else ""
    return {
        "type": "modal",
        "callback_id": DISQUALIFY_CALLBACK,
        "title": {"type": "plain_text", "text": "Disqualify lead"},
        "submit": {"type": "plain_text", "text": "Disqualify"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": metadata,
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{slack_escape(lead.name)}*{company} · {lead.state}",
                },
            },
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why is this lead disqualified?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "min_length": 1,
                    "max_length": 300,
                    "placeholder": {"type": "plain_text", "text": "e.g. student, no budget"},
                },
            },
        ],
    }


def notice_modal(title: str, text: str) -> dict:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(text)}}],
    }


# --- the message after an action ------------------------------------------------------------------


def open_buttons(blocks: list) -> list[dict]:
    """The "Open lead" (URL) buttons of a message: they stay after an action."""
    return [
        element
        for block in blocks
        if block.get("block_id") == ACTIONS_BLOCK
        for element in block.get("elements") or []
        if element.get("action_id") == ACTION_OPEN
    ]


def acted_message(*, blocks: list, text: str, summary: str, keep: list | None = None) -> dict:
    """The original message with its action buttons replaced by what was done ("Call logged by
    Asha Rao at 10:42 IST · SLA met"), for a response_url post that replaces it."""
    kept = [b for b in blocks if b.get("block_id") not in (ACTIONS_BLOCK, OUTCOME_BLOCK, "open")]
    if not kept:
        kept = [{"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(text)}}]
    kept.append(
        {
            "type": "context",
            "block_id": OUTCOME_BLOCK,
            "elements": [{"type": "mrkdwn", "text": f":white_check_mark: {slack_escape(summary)}"}],
        }
    )
    keep = open_buttons(blocks) if keep is None else keep
    if keep:
        kept.append({"type": "actions", "block_id": "open", "elements": keep})
    return {"replace_original": True, "text": f"{text}\n{summary}".strip(), "blocks": kept}


def ephemeral(text: str) -> dict:
    return {"response_type": "ephemeral", "replace_original": False, "text": text}
