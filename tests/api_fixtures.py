"""Fixtures for the REST API tests: a token per persona and a small JSON client.

Personas (on the `org` of conftest): `ops` (Ops managers), `crm` (Integrations), `jonas` (team
lead of Berlin, linked to his rep), `vikram` (manager of Bangalore, linked to his rep), `nobody`
(authenticated, no group)."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory


@dataclass
class ApiUser:
    user: object
    token: str


class Api:
    """JSON requests with a token: `api.get(url, as_=callers.ops, **params)`,
    `api.post(url, {...}, as_=callers.crm)`. Responses carry `.json()`."""

    def __init__(self):
        self.client = Client()

    def _auth(self, as_) -> dict:
        return {"HTTP_AUTHORIZATION": f"Token {as_.token}"} if as_ is not None else {}

    def get(self, url, *, as_=None, **params):
        return self.client.get(url, params, **self._auth(as_))

    def post(self, url, data=None, *, as_=None, raw=None, content_type="application/json"):
        payload = raw if raw is not None else json.dumps({} if data is None else data)
        return self.client.post(url, payload, content_type=content_type, **self._auth(as_))


@dataclass
class People:
    ops: ApiUser
    crm: ApiUser
    jonas: ApiUser
    vikram: ApiUser
    nobody: ApiUser


def _group(name: str) -> Group:
    """The group as the migrations make it; a transactional test before this one may have
    flushed it (the migrations' definitions are reused, not repeated)."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        base = importlib.import_module("escalations.migrations.0002_groups_thresholds")
        api = importlib.import_module("escalations.migrations.0008_integrations_group")
        pairs = {
            "Ops managers": [*base._codenames(base.OPS_MANAGER_PERMS), *api.OPS_MANAGER_EXTRA],
            "Team leads": list(base._codenames(base.TEAM_LEAD_PERMS)),
            "Integrations": api.INTEGRATION_PERMS,
        }[name]
        for app_label, codename in pairs:
            group.permissions.add(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )
    return group


def _user(username: str, group: str | None, rep=None) -> ApiUser:
    user = UserFactory(username=username)
    if group:
        user.groups.add(_group(group))
    if rep is not None:
        rep.user = user
        rep.save()
    return ApiUser(user=user, token=Token.objects.create(user=user).key)


@pytest.fixture
def callers(org) -> People:
    return People(
        ops=_user("olga", "Ops managers"),
        crm=_user("crm", "Integrations"),
        jonas=_user("jonas", "Team leads", org.jonas),
        vikram=_user("vikram", "Team leads", org.vikram),
        nobody=_user("nobody", None),
    )


@pytest.fixture
def api(settings) -> Api:
    # Generous limits: the throttle tests set their own.
    settings.API_THROTTLE_RATES = {"read": "100000/min", "write": "100000/min"}
    return Api()
