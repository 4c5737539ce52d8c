"""What Slack is told after the ack, as django-q2 tasks (see app.py for why): the message update
or an ephemeral note through the payload's `response_url`, and the App Home through
`views.publish`. Each is one HTTP call under the outbox's client rules; a failure fails the task
(recorded by django-q2) and never touches what the action recorded."""

from __future__ import annotations

import logging

from django.utils import timezone
from django_q.tasks import async_task

from escalations.actions import rep_for_slack_user
from escalations.slack.clients import web_client, webhook_client
from escalations.slack.home import home_view

logger = logging.getLogger(__name__)


def later(name: str, *args) -> None:
    """Queue one of this module's tasks. Never raises: what the action recorded is committed,
    and a broken queue must not turn it into an error for Slack (which would retry)."""
    try:
        async_task(f"escalations.slack.tasks.{name}", *args, group="slack")
    except Exception:
        # (With Q_CLUSTER sync, as in tests, the task runs here and its own error lands here.)
        logger.exception("the Slack follow-up %s could not be queued or failed", name)


def post_response(url: str, body: dict) -> str:
    """Post to a payload's response_url: replace the original message, or an ephemeral note."""
    response = webhook_client(url).send_dict(body)
    if response.status_code != 200:
        raise RuntimeError(f"response_url answered HTTP {response.status_code}: {response.body}")
    return f"response_url: HTTP {response.status_code}"


def publish_home(slack_user_id: str, notice: str = "") -> str:
    """Publish the Home tab of a Slack user (their rep's open leads, most urgent first)."""
    rep = rep_for_slack_user(slack_user_id)
    view = home_view(rep, now=timezone.now(), notice=notice, slack_user_id=slack_user_id)
    web_client().views_publish(user_id=slack_user_id, view=view)
    return f"home published for {slack_user_id}"
