"""Which transport carries a notification (SPEC §8), with the fallbacks: a rep (owner, old
owner, new owner) gets a Slack DM, else the team's Teams webhook, else an email; a manager gets the
team's Slack channel, else the Teams webhook, else an email. Without any of them the message goes
to the log, so the demo works offline. Routing reads what it needs from the row (recipient, team)
and the team's manager; the transports it returns do no database work."""

from __future__ import annotations

from django.conf import settings

from escalations.models import REP_PERSONAS
from escalations.notify.transports import (
    CONSOLE,
    ConsoleTransport,
    EmailTransport,
    SlackTransport,
    TeamsTransport,
)


def slack_enabled() -> bool:
    return bool(settings.SLACK_BOT_TOKEN)


def teams_url(team) -> str:
    return team.teams_webhook_url if settings.TEAMS_ENABLED and team.teams_webhook_url else ""


def email_enabled() -> bool:
    return bool(getattr(settings, "EMAIL_ENABLED", False))


def candidates(notification, *, manager=None) -> list:
    """Every transport that could carry this notification, best first (console last).

    `manager` is the team's manager rep, used for the email fallback when the row names none."""
    team = notification.team
    rep = notification.recipient
    found = []
    if notification.persona in REP_PERSONAS and rep is not None:
        if slack_enabled() and rep.slack_user_id:
            found.append(SlackTransport(rep.slack_user_id))
        if url := teams_url(team):
            found.append(TeamsTransport(url, team.slug))
        if email_enabled() and rep.email:
            found.append(EmailTransport(rep.email))
    else:
        boss = rep if rep is not None else manager
        if slack_enabled() and team.slack_channel_id:
            found.append(SlackTransport(team.slack_channel_id))
        if url := teams_url(team):
            found.append(TeamsTransport(url, team.slug))
        if email_enabled() and boss is not None and boss.email:
            found.append(EmailTransport(boss.email))
    found.append(ConsoleTransport(rep.name if rep is not None else team.name))
    return found


def route(notification, *, manager=None, avoid_channel: str = "", avoid_destination: str = ""):
    """The transport for a notification. `avoid_*` steer a "delivery failed" notice away from
    the destination (or the whole channel) that just failed."""
    for transport in candidates(notification, manager=manager):
        if transport.channel == CONSOLE:
            return transport
        if avoid_channel and transport.channel == avoid_channel:
            continue
        if avoid_destination and transport.destination == avoid_destination:
            continue
        return transport
    raise AssertionError("the console transport is always a candidate")
