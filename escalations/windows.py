"""SLA window syntax: `90m`, `4h`, `2bd` (business days). One parser, used by the admin, the
org file and the planner."""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from datetime import timedelta

# ASCII only: `\d` would take `９` (fullwidth) and `\s` an ideographic space. At most 6 digits,
# so a million-digit amount is refused before `int()` (which raises past 4,300 digits).
_WINDOW = re.compile(r"\s*(\d{1,6})\s*(m|h|bd)\s*\Z", re.ASCII)
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
    match = _WINDOW.match(text) if isinstance(text, str) else None
    if not match:
        raise WindowError(
            f"{reprlib.repr(text)} is not a window: write minutes, hours or business days, "
            "like 90m, 4h or 2bd"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise WindowError(f"{text!r}: a window must be longer than zero")
    minutes = amount * {"m": 1, "h": 60, "bd": 60 * 24}[unit]
    if minutes > MAX_MINUTES:
        raise WindowError(f"{text!r}: a window cannot be longer than a year")
    return Window(amount, unit)
