"""What notifications say (SPEC §8): one builder per message kind, rendered at send time from the
outbox row's lead, its timer and the facts frozen in the row's `context`.

Every message carries the seed's sentence — "Aisha Al-Mansoori from Emirates Group, in NEW since
08:00, SLA breach in 12 minutes." — and the facts: lead, company, market, source, state, since
when (the market's local time), business time elapsed, time to breach or overdue by, owner. Plus
a deep link (a signed link for reps, the admin page for managers) and the action buttons.

The same `Message` is shown as Slack Block Kit (with a plain-text fallback), a Teams Adaptive
Card, or an email (text + HTML, templates/notifications/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.template.loader import render_to_string

from escalations import links
from escalations.explain import SlaStatus, duration, local_time, sla_status
from escalations.models import REP_PERSONAS, MessageKind, Persona
from leadops.lifecycle import DISQUALIFIABLE
from teams.models import Rep

# Slack action ids (the Slack app's handlers listen for these). Every button's value is the same
# compact JSON: {"lead_id": 12, "timer_id": 34, "notification_id": 56} (timer_id may be null).
ACTION_OPEN = "lead_open"
ACTION_LOG_CALL = "lead_log_call"
ACTION_LOG_EMAIL = "lead_log_email"
ACTION_DISQUALIFY = "lead_disqualify"

CAUSE_PHRASES = {
    "sla": "after the SLA breach",
    "manual": "by hand",
    "rep_inactive": "because the owner is no longer active",
    "revert": "by a revert",
}


# --- formatting -----------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the message ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    action_id: str
    label: str
    value: str
    url: str = ""
    style: str = ""


@dataclass
class Message:
    kind: str
    persona: str
    title: str
    headline: str  # the seed sentence
    intro: str  # what happened / what to do, per kind
    facts: list[tuple[str, str]]
    link: str
    footer: str
    buttons: list[Button] = field(default_factory=list)
    recipient_name: str = ""
    lead_label: str = ""
    phone: str = ""

    @property
    def text(self) -> str:
        """Plain text: the Slack fallback, the log line."""
        parts = [f"{self.title}: {self.headline}"]
        if self.intro:
            parts.append(self.intro)
        owner = dict(self.facts).get("Owner")
        if owner and self.persona not in REP_PERSONAS:
            parts.append(f"Owner: {owner}.")
        parts.append(f"Open: {self.link}")
        return " ".join(parts)

    def slack_blocks(self) -> list[dict]:
        blocks = [
            {
                "type": "section",
                "block_id": "headline",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{slack_escape(self.title)}*\n{slack_escape(self.headline)}",
                },
            },
        ]
        if self.intro:
            blocks.append(
                {
                    "type": "section",
                    "block_id": "intro",
                    "text": {"type": "mrkdwn", "text": slack_escape(self.intro)},
                }
            )
        blocks.append(
            {
                "type": "section",
                "block_id": "facts",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{label}*\n{slack_escape(value)}"}
                    for label, value in self.facts[:10]  # Slack allows ten fields
                ],
            }
        )
        blocks.append(
            {
                "type": "context",
                "block_id": "footer",
                "elements": [{"type": "mrkdwn", "text": slack_escape(self.footer)}],
            }
        )
        elements = slack_buttons(self.buttons)
        if elements:
            blocks.append({"type": "actions", "block_id": "lead_actions", "elements": elements})
        return blocks

    def teams_card(self) -> dict:
        body = [
            {
                "type": "TextBlock",
                "text": self.title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
            }
        ]
        if self.persona in REP_PERSONAS and self.recipient_name:
            # A Teams webhook posts to the team channel: say whom it is for.
            body.append(
                {
                    "type": "TextBlock",
                    "text": f"For {self.recipient_name}",
                    "isSubtle": True,
                    "spacing": "None",
                    "wrap": True,
                }
            )
        body.append({"type": "TextBlock", "text": self.headline, "wrap": True})
        if self.intro:
            body.append({"type": "TextBlock", "text": self.intro, "wrap": True})
        body.append(
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": value} for label, value in self.facts],
            }
        )
        body.append(
            {
                "type": "TextBlock",
                "text": self.footer,
                "isSubtle": True,
                "size": "Small",
                "wrap": True,
            }
        )
        label = "Open lead (call, log, disqualify)" if len(self.buttons) > 1 else "Open lead"
        return {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": label, "url": self.link}],
        }

    def email_subject(self) -> str:
        return f"[LeadOps] {self.title}: {self.lead_label}"[:200]

    def _email_context(self) -> dict:
        return {"message": self, "actions": [b for b in self.buttons if not b.url]}

    def email_text(self) -> str:
        return render_to_string("notifications/email.txt", self._email_context())

    def email_html(self) -> str:
        return render_to_string("notifications/email.html", self._email_context())


def button_value(lead_id: int, timer_id: int | None, notification_id: int | None) -> str:
    """What every button carries (the Slack app reads it back)."""
    return json.dumps(
        {"lead_id": lead_id, "timer_id": timer_id, "notification_id": notification_id},
        separators=(",", ":"),
    )


def lead_buttons(lead, *, value: str, link: str, actions: bool) -> list[Button]:
    """Open the lead, and (when `actions` and the lead is open) log call, log email, disqualify:
    the same buttons in messages and in the Slack App Home."""
    buttons = [Button(ACTION_OPEN, "Open lead", value, url=link)]
    if actions and not lead.is_closed:
        buttons += [
            Button(ACTION_LOG_CALL, "Log call", value),
            Button(ACTION_LOG_EMAIL, "Log email", value),
        ]
        if lead.state in DISQUALIFIABLE:
            buttons.append(Button(ACTION_DISQUALIFY, "Disqualify", value, style="danger"))
    return buttons


def slack_buttons(buttons: list[Button]) -> list[dict]:
    """Block Kit button elements."""
    elements = []
    for button in buttons:
        element = {
            "type": "button",
            "action_id": button.action_id,
            "text": {"type": "plain_text", "text": button.label},
            "value": button.value,
        }
        if button.url:
            element["url"] = button.url
        if button.style:
            element["style"] = button.style
        elements.append(element)
    return elements


# --- builders -------------------------------------------------------------------------------------


@dataclass
class Facts:
    """What a builder may use: the row, its lead and timer, the SLA status, names from context."""

    notification: object
    lead: object
    timer: object
    status: SlaStatus
    names: dict[int, str]
    now: datetime

    @property
    def context(self) -> dict:
        return self.notification.context or {}

    @property
    def owner_name(self) -> str:
        return self.lead.owner.name if self.lead.owner_id else "nobody"

    def name(self, rep_id) -> str:
        return self.names.get(rep_id, "someone") if rep_id else "nobody"


@dataclass(frozen=True)
class Spec:
    title: str
    intro: str
    actions: bool  # offer log call / log email / disqualify


def _candidates_summary(entries, limit: int = 5) -> str:
    passed = [e for e in entries or [] if e.get("reason") not in ("other_team", "manager")]
    parts = [f"{e.get('name', '?')}: {e.get('label') or e.get('reason')}" for e in passed[:limit]]
    if len(passed) > limit:
        parts.append(f"{len(passed) - limit} more")
    return "; ".join(parts) if parts else "no reps on the team"


def _warning(f: Facts) -> Spec:
    if f.notification.persona == Persona.MANAGER:  # the sweep warns the manager of unowned leads
        return Spec("SLA warning", "Nobody owns this lead: assign it before the breach.", True)
    return Spec(
        "SLA warning",
        "Log a call or an email as soon as you reach out: that stops the clock.",
        True,
    )


def _breach(f: Facts) -> Spec:
    intro = (
        f"{f.owner_name} has not reached out in time."
        if f.lead.owner_id
        else "Nobody owns this lead."
    )
    return Spec("SLA breached", intro, True)


def _reassigned_from(f: Facts) -> Spec:
    to = f.name(f.context.get("to_rep_id"))
    cause = CAUSE_PHRASES.get(f.context.get("cause"), "")
    return Spec(f"Lead reassigned to {to}", f"{to} takes this lead over from you {cause}.", False)


def _reassigned_to(f: Facts) -> Spec:
    source = f.context.get("from_rep_id")
    cause = CAUSE_PHRASES.get(f.context.get("cause"), "")
    intro = (
        f"You take it over from {f.name(source)} {cause}; your own SLA window has started."
        if source
        else "It is yours now; your SLA window has started."
    )
    return Spec("Lead reassigned to you", intro, True)


def _reassigned_team(f: Facts) -> Spec:
    cause = f.context.get("cause", "")
    title = "Lead auto-reassigned" if cause == "sla" else "Lead reassigned"
    who = f"{f.name(f.context.get('from_rep_id'))} → {f.name(f.context.get('to_rep_id'))}"
    return Spec(title, f"{who} {CAUSE_PHRASES.get(cause, '')}.".replace(" .", "."), False)


def _reverted(f: Facts) -> Spec:
    reason = f.context.get("reason", "")
    if f.context.get("restored"):
        return Spec("Lead given back to you", f"The reassignment was reverted: {reason}", True)
    return Spec(
        f"Lead given back to {f.owner_name}",
        f"The reassignment to you was reverted: {reason}",
        False,
    )


def _no_candidate(f: Facts) -> Spec:
    summary = _candidates_summary(f.context.get("candidates"))
    keeps = (
        f"It stays with {f.owner_name}; the sweep keeps trying."
        if f.lead.owner_id
        else "It has no owner now: please assign it."
    )
    return Spec(
        "Nobody available to take a lead",
        f"Nobody on {f.lead.team.name} can take it now ({summary}). {keeps}",
        True,
    )


def _limit_reached(f: Facts) -> Spec:
    count = f.context.get("auto_reassignments", settings.REASSIGN_LIMIT_PER_STATE)
    return Spec(
        "Reassignment limit reached",
        f"Reassigned automatically {count} times in {f.lead.state}: no more automatic "
        f"reassignments. Please decide who takes it.",
        True,
    )


def _unassigned(f: Facts) -> Spec:
    summary = _candidates_summary(f.context.get("candidates"))
    return Spec(
        "New lead without an owner",
        f"Nobody on {f.lead.team.name} was available to take it ({summary}). Please assign it.",
        True,
    )


KIND_NOUNS = {
    MessageKind.WARNING: "SLA warning",
    MessageKind.BREACH: "breach notice",
    MessageKind.REASSIGNED_FROM: "reassignment notice",
    MessageKind.REASSIGNED_TO: "reassignment notice",
    MessageKind.REASSIGNED_TEAM: "reassignment notice",
    MessageKind.REVERTED: "revert notice",
    MessageKind.NO_CANDIDATE: "no-candidate notice",
    MessageKind.LIMIT_REACHED: "reassignment-limit notice",
    MessageKind.UNASSIGNED: "unassigned-lead notice",
}
CHANNEL_NAMES = {"slack": "Slack", "teams": "Microsoft Teams", "email": "email"}


def _delivery_failed(f: Facts) -> Spec:
    ctx = f.context
    what = KIND_NOUNS.get(ctx.get("failed_kind"), "notification")
    channel = CHANNEL_NAMES.get(ctx.get("channel"), ctx.get("channel") or "any channel")
    attempts = ctx.get("attempts") or 1
    return Spec(
        "A notification could not be delivered",
        f"The {what} for {ctx.get('failed_recipient') or 'the team'} could not be delivered by "
        f"{channel} ({ctx.get('error') or 'unknown error'}) after "
        f"{attempts} attempt{'s' if attempts != 1 else ''}. Please pass it on.",
        False,
    )


BUILDERS: dict[str, Callable[[Facts], Spec]] = {
    MessageKind.WARNING: _warning,
    MessageKind.BREACH: _breach,
    MessageKind.REASSIGNED_FROM: _reassigned_from,
    MessageKind.REASSIGNED_TO: _reassigned_to,
    MessageKind.REASSIGNED_TEAM: _reassigned_team,
    MessageKind.REVERTED: _reverted,
    MessageKind.NO_CANDIDATE: _no_candidate,
    MessageKind.LIMIT_REACHED: _limit_reached,
    MessageKind.UNASSIGNED: _unassigned,
    MessageKind.DELIVERY_FAILED: _delivery_failed,
}


# --- rendering ------------------------------------------------------------------------------------


def admin_url(lead) -> str:
    return f"{settings.SITE_URL}/admin/leadops/lead/{lead.pk}/change/"


def context_rep_ids(notification) -> set[int]:
    ctx = notification.context or {}
    return {ctx[k] for k in ("from_rep_id", "to_rep_id") if isinstance(ctx.get(k), int)}


def headline(lead, status: SlaStatus, now: datetime) -> str:
    """The seed sentence: "<name> from <company>, in <STATE> since <local time>, <SLA phrase>."."""
    since = local_time(lead.state_entered_at, ZoneInfo(lead.market.timezone), now)
    who = f"{lead.name} from {lead.company}" if lead.company else lead.name
    return f"{who}, in {lead.state} since {since}, {status.phrase}."


def render(notification, *, now: datetime, timer=None, names: dict[int, str] | None = None):
    """The message for an outbox row at `now`. `timer` is the lead's open timer (default: the
    row's); `names` maps rep ids named in the context to names (looked up when missing)."""
    lead = notification.lead
    timer = timer if timer is not None else notification.timer
    wanted = context_rep_ids(notification) - set(names or {})
    names = dict(names or {})
    if wanted:
        names.update(Rep.objects.filter(pk__in=wanted).values_list("pk", "name"))
    status = sla_status(lead, timer, now, notification.context)
    facts = Facts(notification, lead, timer, status, names, now)
    spec = BUILDERS[notification.kind](facts)

    recipient = notification.recipient
    if notification.persona in REP_PERSONAS and recipient is not None:
        link = links.make_link(recipient, lead)
    else:
        link = admin_url(lead)
    value = button_value(lead.pk, timer.pk if timer else None, notification.pk)
    buttons = lead_buttons(lead, value=value, link=link, actions=spec.actions)

    tz = ZoneInfo(lead.market.timezone)
    since_local = lead.state_entered_at.astimezone(tz)
    if status.remaining is None:
        sla = status.phrase
    elif status.remaining > timedelta(0):
        sla = f"breach in {duration(status.remaining)} (due {status.due})"
    else:
        sla = f"overdue by {duration(-status.remaining)} (was due {status.due})"
    if status.label == "paused":
        sla = f"paused (on hold), {duration(max(status.remaining, timedelta(0)))} left"
    fact_list = [
        ("Lead", lead.name),
        ("Company", lead.company or "—"),
        ("Market", f"{lead.market.name} ({lead.market.code})"),
        ("Source", lead.source.name),
        ("State", lead.state),
        ("Since", f"{local_time(lead.state_entered_at, tz, now)} {since_local.tzname()}"),
        (
            "Elapsed",
            f"{duration(status.elapsed)} (business time)" if status.elapsed is not None else "—",
        ),
        ("SLA", sla),
        ("Owner", lead.owner.name if lead.owner_id else "nobody"),
    ]
    if lead.phone:
        fact_list.append(("Phone", lead.phone))
    footer = f"Times in {lead.market.timezone}"
    if status.window:
        footer += f" · SLA window {status.window} · status: {status.label}"
    footer += f" · {lead.team.name} · notification #{notification.pk}"
    return Message(
        kind=notification.kind,
        persona=notification.persona,
        title=spec.title,
        headline=headline(lead, status, now),
        intro=spec.intro,
        facts=fact_list,
        link=link,
        footer=footer,
        buttons=buttons,
        recipient_name=recipient.name if recipient is not None else "",
        lead_label=str(lead),
        phone=lead.phone,
    )
