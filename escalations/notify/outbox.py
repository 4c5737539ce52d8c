"""Writing messages into the outbox, in the transaction of the step they announce (SPEC §8).

Delivery is separate (escalations/notify/delivery.py): it runs after commit and retries."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django_q import tasks as q_tasks

from escalations.models import REP_PERSONAS, Notification, NotificationStatus
from escalations.schedule import DELIVERY_TASK
from leadops.bulk import insert_rows
from teams.calendar_builders import calendar_for_rep
from teams.models import Rep

logger = logging.getLogger(__name__)


def release_time(rep, now: datetime) -> datetime:
    """Quiet hours: a message to a rep outside their working hours waits for their next
    working period (their own hours and zone, or the market's)."""
    calendar = calendar_for_rep(rep)
    return now if calendar.is_open(now) else calendar.next_open(now)


def team_manager(team_id: int, managers: dict | None = None):
    """One team's manager, from (and into) `managers` when the caller keeps one per batch."""
    if managers is not None and team_id in managers:
        return managers[team_id]
    manager = Rep.objects.managers_by_team([team_id]).get(team_id)
    if managers is not None:
        managers[team_id] = manager
    return manager


def message_values(
    *,
    key: str,
    kind: str,
    persona: str,
    lead,
    now: datetime,
    recipient=None,
    timer=None,
    stage: str = "",
    context: dict | None = None,
    superseded: bool = False,
    release=None,
) -> dict:
    """The columns of one outbox row. `key` makes it unique: once per (timer, stage, persona)."""
    next_attempt_at = now
    if recipient is not None and persona in REP_PERSONAS and not superseded:
        next_attempt_at = (release or release_time)(recipient, now)
    return {
        "dedupe_key": key[:200],
        "kind": kind,
        "persona": persona,
        "lead_id": lead.pk,
        "team_id": lead.team_id,
        "timer_id": timer.pk if timer is not None else None,
        "stage": stage,
        "recipient_id": recipient.pk if recipient is not None else None,
        "status": NotificationStatus.SUPERSEDED if superseded else NotificationStatus.PENDING,
        "channel": "",
        "destination": "",
        "attempts": 0,
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
        "last_error": "",
        "provider_id": "",
        "unsure_since": None,
        "context": context or {},
        "created_at": now,
        "sent_at": None,
    }


def message(**kwargs) -> Notification:
    """An unsaved outbox row (see `message_values`)."""
    return Notification(**message_values(**kwargs))


def stage_key(timer, stage: str, persona: str) -> str:
    return f"timer:{timer.pk}:{stage}:{persona}"


def add(rows: list) -> None:
    """Insert outbox rows (`message_values` dicts or unsaved `Notification`s; a repeated dedupe
    key is ignored) and wake delivery after commit."""
    if not rows:
        return
    fields = [f.attname for f in Notification._meta.concrete_fields if not f.primary_key]
    rows = [r if isinstance(r, dict) else {n: getattr(r, n) for n in fields} for r in rows]
    insert_rows(Notification, rows, ignore_conflicts=True)
    if any(row["status"] == NotificationStatus.PENDING for row in rows) and not _wake_queued():
        transaction.on_commit(_wake_delivery)


def _wake_queued() -> bool:
    """One wake-up per transaction is enough, however many steps wrote to the outbox."""
    pending = getattr(transaction.get_connection(), "run_on_commit", [])
    return any(entry[1] is _wake_delivery for entry in pending)


def _wake_delivery() -> None:
    enqueue_delivery()


def enqueue_delivery() -> None:
    """Wake delivery (called on commit). Never raises: the per-minute schedule is the safety
    net, and a broken queue must not break the commit that wrote the rows."""
    try:
        q_tasks.async_task(DELIVERY_TASK, task_name="notification delivery", group="delivery")
    except Exception:
        logger.exception("could not enqueue notification delivery; the schedule will catch up")
