"""Entry points for django-q2. Each drains a bounded amount of work and returns."""

from __future__ import annotations

import logging

from django.conf import settings

from escalations.notify.delivery import deliver_due
from escalations.sweep import run_sweep

logger = logging.getLogger(__name__)


def sweep(helpers: int | None = None) -> str:
    """The scheduled sweep. When the first batch comes back full there is a backlog: it asks
    the other cluster workers to help (SKIP LOCKED gives each its own timers), and when it stops
    at its batch cap with work left it queues its own continuation."""
    if helpers is None:
        helpers = max(settings.Q_CLUSTER.get("workers", 1) - 1, 0)
    asked = False

    def on_full_batch():
        nonlocal asked
        if helpers and not asked:
            asked = True
            for _ in range(helpers):
                _enqueue_sweep(helpers=0)

    result = run_sweep(on_full_batch=on_full_batch)
    if result.batches >= settings.SWEEP_MAX_BATCHES:
        _enqueue_sweep(helpers=helpers)
    return result.summary()


def _enqueue_sweep(*, helpers: int) -> None:
    from django_q.tasks import async_task

    try:
        async_task("escalations.tasks.sweep", helpers, group="sweep")
    except Exception:  # the next scheduled sweep picks the work up anyway
        logger.exception("could not queue a helper sweep")


def deliver() -> str:
    return deliver_due().summary()
