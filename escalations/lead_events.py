"""What escalation does when the lifecycle announces a lead change (`leadops.signals`): a new
lead without an owner is routed to an available rep (SPEC §7), then the SLA timer follows the
change (SPEC §6). Runs in the lead's transaction, with the lead row locked by the verb."""

from __future__ import annotations

from escalations import timers
from escalations.reassign import route_new_lead
from leadops.lifecycle import LeadChange


def on_lead_change(change: LeadChange) -> None:
    if change.kind == "created" and change.lead.owner_id is None:
        route_new_lead(change.lead, now=change.at, actor=change.actor)
    timers.on_lead_change(change)
