"""The App Home tab (SPEC §9): the rep's open leads, most urgent first (breached, at risk, on
track, paused, no SLA), each with its SLA phrase from `escalations.explain` and the same buttons
as the messages. Published on `app_home_opened` and after each action."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from escalations import links
from escalations.explain import local_time, sla_status
from escalations.models import SlaTimer
from escalations.notify.messages import button_value, lead_buttons, slack_buttons, slack_escape
from leadops.models import OPEN_STATES, Lead
from teams.models import Market

HOME_LIMIT = 25  # two blocks a lead, and Slack allows 100 blocks in a view
URGENCY = {"breached": 0, "at risk": 1, "on track": 2, "paused": 3, "no SLA": 4}


# What the Home reads of a lead and of a timer: loading whole rows (and each lead's market with
# its JSON calendar) cost most of the time for a rep with many leads (`manage.py bench home`).
LEAD_FIELDS = ("name", "company", "state", "state_entered_at", "market_id", "team_id", "owner_id")
TIMER_FIELDS = (
    *("lead_id", "state", "window", "clock", "window_business", "due_at", "stage"),
    *("running_since", "consumed", "paused_at", "completed_at", "auto_reassign_count"),
)


def open_leads_by_urgency(rep, *, now) -> list[tuple]:
    """(lead, open timer or None, SlaStatus) for each open lead the rep owns, most urgent first
    (then the least business time left). Three queries whatever the number of leads."""
    leads = list(Lead.objects.filter(owner=rep, state__in=OPEN_STATES).only(*LEAD_FIELDS))
    markets = Market.objects.in_bulk({lead.market_id for lead in leads})
    timers = {
        timer.lead_id: timer
        for timer in SlaTimer.objects.filter(
            lead_id__in=[lead.pk for lead in leads], completed_at__isnull=True
        ).only(*TIMER_FIELDS)
    }
    rows = []
    for lead in leads:
        lead.market = markets[lead.market_id]
        timer = timers.get(lead.pk)
        if timer is not None:
            timer.lead = lead
        rows.append((lead, timer, sla_status(lead, timer, now)))
    far = timedelta.max
    rows.sort(
        key=lambda row: (
            URGENCY.get(row[2].label, len(URGENCY)),
            row[2].remaining if row[2].remaining is not None else far,
            row[0].pk,
        )
    )
    return rows


def _lead_blocks(rep, lead, timer, status, now) -> list[dict]:
    tz = ZoneInfo(lead.market.timezone)
    since = lead.state_entered_at.astimezone(tz)
    company = f" · {slack_escape(lead.company)}" if lead.company else ""
    text = (
        f"*{slack_escape(lead.name)}*{company}\n"
        f"{lead.state} since {local_time(lead.state_entered_at, tz, now)} {since.tzname()} · "
        f"*{status.label}*: {slack_escape(status.phrase)}"
    )
    if status.due:
        text += f" (due {status.due})"
    value = button_value(lead.pk, timer.pk if timer is not None else None, None)
    buttons = lead_buttons(lead, value=value, link=links.make_link(rep, lead), actions=True)
    return [
        {
            "type": "section",
            "block_id": f"lead_{lead.pk}",
            "text": {"type": "mrkdwn", "text": text},
        },
        {
            "type": "actions",
            "block_id": f"lead_{lead.pk}_actions",
            "elements": slack_buttons(buttons),
        },
    ]


def home_view(rep, *, now, notice: str = "", slack_user_id: str = "") -> dict:
    """The Home tab for `rep` (None: a Slack user linked to no rep)."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Your open leads"}},
    ]
    if notice:
        blocks.append(
            {
                "type": "section",
                "block_id": "notice",
                "text": {"type": "mrkdwn", "text": slack_escape(notice)},
            }
        )
    if rep is None:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "Your Slack account is not linked to a rep: ask an ops manager to put "
                    f"your Slack user id ({slack_escape(slack_user_id)}) on your rep in LeadOps.",
                },
            }
        )
        return {"type": "home", "blocks": blocks}
    rows = open_leads_by_urgency(rep, now=now)
    shown = rows[:HOME_LIMIT]
    more = f"; the {HOME_LIMIT} most urgent are shown" if len(rows) > HOME_LIMIT else ""
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{len(rows)} open lead{'s' if len(rows) != 1 else ''}, most urgent "
                    f"first{more}. Times in each lead's market.",
                }
            ],
        }
    )
    for lead, timer, status in shown:
        blocks.extend(_lead_blocks(rep, lead, timer, status, now))
    return {"type": "home", "blocks": blocks}
