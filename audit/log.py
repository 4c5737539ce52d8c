"""`record` writes audit events. Call it inside the transaction of the change it describes."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from leadops.actors import SYSTEM, Actor, resolve_actor
from leadops.bulk import insert_rows


def build_values(
    kind: str,
    *,
    lead=None,
    timer=None,
    actor: Actor | object | None = None,
    owner=None,
    team=None,
    policy=None,
    occurred_at: datetime | None = None,
    recorded_at: datetime | None = None,
    stage_due_at: datetime | None = None,
    elapsed: timedelta | None = None,
    correlation_id: str = "",
    details: dict | None = None,
) -> dict:
    """The columns of one event, filled with the facts of the lead and timer (the one place
    that decides what an event carries)."""
    who = actor if isinstance(actor, Actor) else (SYSTEM if actor is None else resolve_actor(actor))
    now = timezone.now() if occurred_at is None or recorded_at is None else None
    values = {
        "kind": kind,
        "occurred_at": occurred_at or now,
        "recorded_at": recorded_at or now,
        "actor_user_id": who.user.pk if who.user is not None else None,
        "actor_name": who.name[:150],
        "correlation_id": correlation_id,
        "stage_due_at": stage_due_at,
        "elapsed": elapsed,
        "details": details or {},
        "lead_id": None,
        "team_id": None,
        "timer_id": None,
        "timer_started_at": None,
        "owner_id": None,
        "lead_label": "",
        "owner_name": "",
        "state": "",
        "policy_id": None,
        "policy_version": None,
        "thresholds": None,
        "window": "",
    }
    if timer is not None:
        values.update(
            timer_id=timer.pk,
            timer_started_at=timer.started_at,
            policy_id=timer.policy_id,
            policy_version=timer.policy_version,
            thresholds=timer.thresholds,
            window=timer.window,
            state=timer.state,
        )
        if owner is None and lead is None and timer.owner_id:
            owner = timer.owner
        if lead is None:
            lead = timer.lead
    if lead is not None:
        values.update(
            lead_id=lead.pk,
            team_id=lead.team_id,
            lead_label=str(lead)[:200],
            state=values["state"] or lead.state,
        )
        if owner is None and lead.owner_id:
            owner = lead.owner
    if owner is not None:
        values.update(owner_id=owner.pk, owner_name=owner.name[:100])
    if team is not None:  # an event about the org rather than a lead (a rep made inactive)
        values["team_id"] = team.pk
    if policy is not None:  # an event about a policy itself (policy_changed)
        values.update(policy_id=policy.pk, policy_version=policy.version)
    return values


def build(kind: str, **facts) -> AuditEvent:
    """An unsaved event (see `build_values`)."""
    return AuditEvent(**build_values(kind, **facts))


def record(kind: str, **facts) -> AuditEvent:
    """Write one audit event now, in the caller's transaction."""
    if not transaction.get_connection().in_atomic_block:
        # Every change is atomic with its audit row; a caller outside a transaction is a bug.
        raise RuntimeError("audit.record must be called inside the transaction of the change")
    event = build(kind, **facts)
    event.save()
    return event


def record_many(events: list) -> None:
    """Write many events (`build_values` dicts or unsaved `AuditEvent`s) in one statement."""
    if not events:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record_many must be called inside the transaction of the change")
    fields = [f.attname for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    rows = [e if isinstance(e, dict) else {n: getattr(e, n) for n in fields} for e in events]
    insert_rows(AuditEvent, rows)
