"""Validation of holiday country/subdivision codes against the `holidays` package."""

from __future__ import annotations

import holidays


def holiday_error(country: str, subdivision: str = "") -> str | None:
    """None when the codes are known to the holidays package, else a message naming the bad one."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f"{country!r} is not a country code known to the holidays package (e.g. IN, US, DE)"
    known = supported[country]
    if subdivision and subdivision not in known:
        listed = ", ".join(known[:12]) + ("…" if len(known) > 12 else "")
        return f"subdivision {subdivision!r} is not known for {country} (known: {listed})"
    return None
