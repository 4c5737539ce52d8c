"""Entry points for django-q2. Each drains a bounded amount of work and returns."""

from __future__ import annotations


def sweep() -> str:
    from escalations.sweep import run_sweep

    return run_sweep().summary()


def deliver() -> str:
    from escalations.delivery import deliver_due

    return deliver_due().summary()
