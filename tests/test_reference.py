"""Reference data kept per process (`teams.reference`): every write to a kept table changes the
stamp, whoever writes; what the API kept under an old stamp is never used after a change."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from escalations.models import SlaPolicy, SlaThresholds
from leadops.models import Lead, Source
from teams import reference
from teams.models import Market, Rep, Team
from tests.conftest import berlin

LEADS = "/api/v1/leads/"
# A statement's verb and first table (transaction control, savepoints and triggers aside).
STATEMENT = re.compile(r'(SELECT|INSERT|UPDATE|DELETE)\b.*?\b(?:FROM|INTO|UPDATE)\s+"?(\w+)', re.S)


@pytest.fixture
def clock():
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False) as traveller:
        yield traveller


def new_lead(n: int, **overrides) -> dict:
    return {
        "name": f"Lead {n}",
        "market": "DE",
        "source": "paid_social",
        "team": "de-berlin",
        "owner": "lena@example.com",
        "external_id": f"ref-{n}",
        **overrides,
    }


def stamp() -> str | None:
    return reference.current_stamp()


# --- the stamp --------------------------------------------------------------------------------


WRITES = {
    "market": lambda org: Market.objects.filter(pk=org.de.pk).update(name="Deutschland"),
    "team": lambda org: Team.objects.filter(pk=org.berlin_team.pk).update(name="Berlin"),
    "rep saved": lambda org: org.lena.save(),
    "rep deactivated": lambda org: Rep.objects.filter(pk=org.lena.pk).update(active=False),
    "source": lambda org: Source.objects.create(code="fair", name="Trade fair"),
    "policy": lambda org: SlaPolicy.objects.create(state="NEW", market=org.de, window="3h"),
    "thresholds": lambda org: SlaThresholds.objects.update_or_create(
        pk=1, defaults={"warn_percent": 70}
    ),
    "group member": lambda org: Group.objects.get_or_create(name="Ops managers")[0].user_set.add(
        _user("someone")
    ),
    "group permission": lambda org: Group.objects.create(name="g").permissions.add(
        Permission.objects.first()
    ),
    "user deactivated": lambda org: type(_user("u")).objects.update(is_active=False),
    "token deleted": lambda org: Token.objects.filter(user=_user("t")).delete(),
}


def _user(username: str):
    from tests.factories import UserFactory

    user = UserFactory(username=username)
    Token.objects.create(user=user)
    return user


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_to_a_kept_table_changes_the_stamp(db, org, write):
    before = stamp()

    WRITES[write](org)

    assert stamp() not in (None, before)


def test_routing_and_sign_ins_leave_the_stamp(db, org):
    """A rep's last_assigned_at (written by every routed lead) and a user's last_login (every
    sign-in) are read by no kept lookup; they must not empty the cache all day."""
    user = _user("signs-in")
    before = stamp()

    Rep.objects.filter(pk=org.lena.pk).update(last_assigned_at=timezone.now())
    type(user).objects.filter(pk=user.pk).update(last_login=timezone.now())

    assert stamp() == before


def test_a_rolled_back_write_restores_the_stamp_its_values_were_kept_under(db, org):
    before = stamp()
    with transaction.atomic():
        SlaPolicy.objects.create(state="NEW", window="3h")
        assert stamp() != before
        transaction.set_rollback(True)

    assert stamp() == before


# --- cached() ---------------------------------------------------------------------------------


def test_outside_a_snapshot_every_lookup_loads(db, org):
    loads = []

    for _ in range(3):
        reference.cached(("k",), lambda: loads.append(1) or len(loads))

    assert len(loads) == 3


def test_inside_snapshots_a_lookup_loads_once_per_stamp(db, org):
    loads = []

    def load():
        loads.append(1)
        return len(loads)

    with reference.snapshot():
        first = reference.cached(("k",), load)
    with reference.snapshot():
        again = reference.cached(("k",), load)
    Market.objects.filter(pk=org.de.pk).update(name="Deutschland")
    with reference.snapshot():
        after_change = reference.cached(("k",), load)

    assert (first, again, after_change) == (1, 1, 2)


# --- the API sees every change at once --------------------------------------------------------


def test_a_warm_intake_reads_the_stamp_and_writes_the_lead_history_and_timer(
    api, callers, org, policies, clock
):
    api.post(LEADS, new_lead(1), as_=callers.crm)  # loads the caller, org and policy

    with CaptureQueriesContext(connection) as ctx:
        response = api.post(LEADS, new_lead(2), as_=callers.crm)

    assert response.status_code == 201
    statements = [
        f"{found.group(1)} {found.group(2)}"
        for q in ctx.captured_queries
        if (found := STATEMENT.match(q["sql"]))
    ]
    assert statements == [
        "SELECT teams_referencestamp",
        "INSERT leadops_lead",
        "INSERT leadops_historicallead",
        "INSERT escalations_slatimer",
    ]


def test_a_deleted_token_is_refused_on_the_next_request(api, callers, org, policies, clock):
    assert api.get(LEADS, as_=callers.crm).status_code == 200

    Token.objects.filter(key=callers.crm.token).delete()

    assert api.get(LEADS, as_=callers.crm).status_code == 401


def test_a_caller_out_of_integrations_may_no_longer_write(api, callers, org, policies, clock):
    assert api.post(LEADS, new_lead(1), as_=callers.crm).status_code == 201

    callers.crm.user.groups.clear()

    assert api.post(LEADS, new_lead(2), as_=callers.crm).status_code == 403


def test_a_deactivated_owner_is_refused_right_after(api, callers, org, policies, clock):
    assert api.post(LEADS, new_lead(1), as_=callers.crm).status_code == 201

    Rep.objects.filter(pk=org.lena.pk).update(active=False)
    response = api.post(LEADS, new_lead(2), as_=callers.crm)

    assert response.status_code == 400, response.json()
    assert not Lead.objects.filter(external_id="ref-2").exists()


def test_a_new_policy_applies_to_the_next_lead(api, callers, org, policies, clock):
    first = api.post(LEADS, new_lead(1), as_=callers.crm).json()
    policies["NEW"].window = "3h"
    policies["NEW"].save()

    second = api.post(LEADS, new_lead(2), as_=callers.crm).json()

    assert first["sla"]["window"] == "1h"
    assert second["sla"]["window"] == "3h"
    assert second["sla"]["policy_version"] == first["sla"]["policy_version"] + 1
