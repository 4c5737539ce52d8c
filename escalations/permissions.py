"""Who may do what, in one place: used by the admin, the API and the Slack handlers."""

from __future__ import annotations

from leadops.actors import rep_of_user
from teams.models import Role

OPS_MANAGERS = "Ops managers"
TEAM_LEADS = "Team leads"


class NotAllowed(Exception):
    """The user may not do this; the message says why."""


def is_ops_manager(user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=OPS_MANAGERS).exists()


def led_team_ids(user) -> set[int]:
    """Teams whose lead or manager this user is (through their rep)."""
    rep = rep_of_user(user)
    if rep is None or not rep.active or rep.role not in (Role.LEAD, Role.MANAGER):
        return set()
    return {rep.team_id}


def sees_all_teams(user) -> bool:
    return is_ops_manager(user)


def can_act_on_team(user, team_id: int) -> bool:
    return is_ops_manager(user) or team_id in led_team_ids(user)


def check_can_revert(user, lead) -> None:
    """A reassignment may be reverted by the lead's team lead or manager, an ops manager or a
    superuser. Anyone else gets NotAllowed."""
    if user is None or not getattr(user, "is_authenticated", False):
        raise NotAllowed("Only a signed-in team lead, manager or ops manager can revert.")
    if not can_act_on_team(user, lead.team_id):
        raise NotAllowed(
            f"Only a team lead or manager of {lead.team.name}, or an ops manager, "
            "can revert this reassignment."
        )
