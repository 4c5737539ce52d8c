"""Outbox delivery (placeholder until the notifications issue lands)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DeliveryResult:
    sent: int = 0

    def summary(self) -> str:
        return f"delivery: {self.sent} sent"


def enqueue_delivery() -> None:
    return None


def deliver_due() -> DeliveryResult:
    return DeliveryResult()
