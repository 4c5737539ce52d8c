"""Signal receivers: each is one call of a domain verb (connected in `EscalationsConfig.ready`)."""

from __future__ import annotations

from escalations import lead_events


def lead_changed(sender, *, change, **kwargs) -> None:
    lead_events.on_lead_change(change)
