"""Whether a rep can take work right now: active, in working hours (their own zone), not on
time off. Capacity needs the rep's open leads, so it is judged in escalations/candidates.py."""

from __future__ import annotations

from datetime import datetime

from teams.calendar_builders import calendar_for_rep
from teams.models import Rep, TimeOff


class Unavailable:
    """Why a rep was passed over (stored in `Reassignment.candidates`)."""

    OTHER_TEAM = "other_team"
    MANAGER = "manager"
    INACTIVE = "inactive"
    CURRENT_OWNER = "current_owner"
    PREVIOUS_OWNER = "previous_owner"
    OFF_HOURS = "off_hours"
    ON_PTO = "on_pto"
    AT_CAPACITY = "at_capacity"

    LABELS = {
        OTHER_TEAM: "other team",
        MANAGER: "team manager",
        INACTIVE: "inactive",
        CURRENT_OWNER: "current owner",
        PREVIOUS_OWNER: "earlier owner of this episode",
        OFF_HOURS: "off hours",
        ON_PTO: "on PTO",
        AT_CAPACITY: "at capacity",
    }


def reps_on_time_off(rep_ids, at: datetime) -> set[int]:
    return set(
        TimeOff.objects.filter(rep_id__in=list(rep_ids), start__lte=at, end__gt=at).values_list(
            "rep_id", flat=True
        )
    )


def in_working_hours(rep: Rep, at: datetime) -> bool:
    return calendar_for_rep(rep).is_open(at)


def unavailability(rep: Rep, at: datetime, *, on_time_off: set[int]) -> str | None:
    """Why the rep cannot take work at `at` (inactive, off hours, on PTO), or None."""
    if not rep.active:
        return Unavailable.INACTIVE
    if rep.pk in on_time_off:
        return Unavailable.ON_PTO
    if not in_working_hours(rep, at):
        return Unavailable.OFF_HOURS
    return None
