"""The django-q2 schedules: the sweep every minute (SWEEP_INTERVAL_MINUTES) and the delivery
of stragglers in the outbox. Installed idempotently after `migrate`."""

from __future__ import annotations

from django.conf import settings
from django_q.models import Schedule

SWEEP_TASK = "escalations.tasks.sweep"
DELIVERY_TASK = "escalations.tasks.deliver"


def install_schedules(sender=None, using="default", **kwargs) -> None:
    Schedule.objects.using(using).update_or_create(
        name="escalation sweep",
        defaults={
            "func": SWEEP_TASK,
            "schedule_type": Schedule.MINUTES,
            "minutes": settings.SWEEP_INTERVAL_MINUTES,
            "repeats": -1,
        },
    )
    Schedule.objects.using(using).update_or_create(
        name="notification delivery",
        defaults={
            "func": DELIVERY_TASK,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
