"""Validation of holiday country/subdivision codes against the `holidays` package."""

from __future__ import annotations

import holidays


def holiday_error(country: str, subdivision: str = "") -> str | None:
    """None when the codes are known to the holidays package, else a message naming the bad one."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f"{country!r} is not a country code known to the holidays package (e.g. IN, US, DE)"
    if subdivision and subdivision not in supported[country]:
        return (
            f"subdivision {subdivision!r} is not known for {country} "
            f"(known: {', '.join(supported[country][:12])}{'…' if len(supported[country]) > 12 else ''})"
        )
    return None
