"""`record` writes audit events. Call it inside the transaction of the change it describes."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from leadops.actors import SYSTEM, Actor, resolve_actor


def build(
    kind: str,
    *,
    lead=None,
    timer=None,
    actor: Actor | object | None = None,
    owner=None,
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
    stage_due_at: datetime | None = None,
    elapsed: timedelta | None = None,
    correlation_id: str = "",
    details: dict | None = None,
) -> AuditEvent:
    """An unsaved event, filled with the facts of the lead and timer (for `bulk_create`)."""
    who = actor if isinstance(actor, Actor) else (SYSTEM if actor is None else resolve_actor(actor))
    now = timezone.now()
    event = AuditEvent(
        kind=kind,
        occurred_at=occurred_at or now,
        recorded_at=recorded_at or now,
        actor_user=who.user,
        actor_name=who.name[:150],
        correlation_id=correlation_id,
        stage_due_at=stage_due_at,
        elapsed=elapsed,
        details=details or {},
    )
    if timer is not None:
        event.timer_id = timer.pk
        event.policy_id = timer.policy_id
        event.policy_version = timer.policy_version
        event.thresholds = timer.thresholds
        event.window = timer.window
        event.state = timer.state
        if owner is None and lead is None and timer.owner_id:
            owner = timer.owner
        if lead is None:
            lead = timer.lead
    if lead is not None:
        event.lead_id = lead.pk
        event.team_id = lead.team_id
        event.lead_label = str(lead)[:200]
        event.state = event.state or lead.state
        if owner is None and lead.owner_id:
            owner = lead.owner
    if owner is not None:
        event.owner_id = owner.pk
        event.owner_name = owner.name[:100]
    return event


def record(kind: str, **facts) -> AuditEvent:
    """Write one audit event now, in the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        # Every change is atomic with its audit row; a caller outside a transaction is a bug.
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    event = build(kind, **facts)
    event.save()
    return event


def record_many(events: list[AuditEvent]) -> list[AuditEvent]:
    return AuditEvent.objects.bulk_create(events, batch_size=1000)
