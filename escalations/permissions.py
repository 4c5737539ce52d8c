"""Who may do what, in one place: used by the admin, the API and the Slack handlers."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from leadops.actors import rep_of_user
from teams import reference
from teams.models import Role, Team

OPS_MANAGERS = "Ops managers"
TEAM_LEADS = "Team leads"
# The CRM, web forms and dialer (API tokens): they feed leads in and read every team's leads back.
INTEGRATIONS = "Integrations"


class NotAllowed(Exception):
    """The user may not do this; the message says why."""


def group_names(user) -> frozenset[str]:
    """The user's group names, read once per user object (a request asks many times: every
    admin's permission check on the index)."""
    names = getattr(user, "_leadops_group_names", None)
    if names is None:
        names = user._leadops_group_names = frozenset(user.groups.values_list("name", flat=True))
    return names


def is_ops_manager(user) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return OPS_MANAGERS in group_names(user)


def led_team_ids(user) -> set[int]:
    """Teams whose lead or manager this user is (through their rep)."""
    rep = rep_of_user(user)
    if rep is None or not rep.active or rep.role not in (Role.LEAD, Role.MANAGER):
        return set()
    return {rep.team_id}


def sees_all_teams(user) -> bool:
    """Ops managers (and superusers) and the integrations see every team."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    return bool({OPS_MANAGERS, INTEGRATIONS} & group_names(user))


@dataclass(frozen=True)
class Scope:
    """The teams a user may see: all of them, or `team_ids` (possibly none)."""

    all_teams: bool
    team_ids: frozenset[int]

    def filter(self, queryset, team_path: str = "team"):
        """`queryset` narrowed to the scope; `team_path` is the lookup from the model to the
        team's id (`team`, `lead__team`, `rep__team`, `pk`)."""
        if self.all_teams:
            return queryset
        return queryset.filter(**{f"{team_path}__in": sorted(self.team_ids)})

    def filter_markets(self, queryset, market_path: str = "market", *, shared: bool = False):
        """`queryset` narrowed to rows of the markets of the scope's teams (markets, policies);
        `shared` keeps rows of no market too (a default policy applies to every market)."""
        if self.all_teams:
            return queryset
        markets = Team.objects.filter(pk__in=sorted(self.team_ids)).values("market_id")
        condition = Q(**{f"{market_path}__in": markets})
        if shared:
            condition |= Q(**{f"{market_path}__isnull": True})
        return queryset.filter(condition)

    def includes(self, team_id: int) -> bool:
        return self.all_teams or team_id in self.team_ids


def scope_of(user) -> Scope:
    """The one rule of who sees what (SPEC §10), shared by the admin and the API: ops managers,
    superusers and integrations see every team, a team lead or manager their own team, anyone
    else nothing."""
    return reference.cached(("scope", user.pk), lambda: _scope_of(user))


def _scope_of(user) -> Scope:
    if sees_all_teams(user):
        return Scope(all_teams=True, team_ids=frozenset())
    return Scope(all_teams=False, team_ids=frozenset(led_team_ids(user)))


def has_perm(user, perm: str) -> bool:
    """`user.has_perm(perm)` for an active user, the user's permissions read once per
    reference stamp inside a `teams.reference.snapshot()` (an API request)."""
    if user.is_superuser:
        return True
    found = reference.cached(("perms", user.pk), lambda: frozenset(user.get_all_permissions()))
    return perm in found


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
