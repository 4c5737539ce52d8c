"""SLA window syntax: `90m`, `4h`, `2bd` (business days). One parser, used by the admin, the
org file and the planner."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_WINDOW = re.compile(r"^\s*(\d+)\s*(m|h|bd)\s*$")
MAX_MINUTES = 60 * 24 * 366


class WindowError(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    amount: int
    unit: str  # "m" | "h" | "bd"

    @property
    def text(self) -> str:
        return f"{self.amount}{self.unit}"

    @property
    def business_days(self) -> int | None:
        return self.amount if self.unit == "bd" else None

    @property
    def duration(self) -> timedelta | None:
        """The window as a duration, for `m`/`h`; None for business days (depends on start)."""
        if self.unit == "m":
            return timedelta(minutes=self.amount)
        if self.unit == "h":
            return timedelta(hours=self.amount)
        return None

    def __str__(self) -> str:
        return self.text


def parse_window(text: str) -> Window:
    match = _WINDOW.match(str(text or ""))
    if not match:
        raise WindowError(
            f"{text!r} is not a window: write minutes, hours or business days, like 90m, 4h or 2bd"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise WindowError(f"{text!r}: a window must be longer than zero")
    minutes = amount * {"m": 1, "h": 60, "bd": 60 * 24}[unit]
    if minutes > MAX_MINUTES:
        raise WindowError(f"{text!r}: a window cannot be longer than a year")
    return Window(amount, unit)
