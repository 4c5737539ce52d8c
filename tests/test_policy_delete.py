"""SLA policies are deactivated, never deleted, by ops managers: no delete is offered to them,
nor one that cannot succeed (a policy timers name). A superuser may delete a policy no timer ran
on, after giving a reason, which goes into its history and the audit log."""

from __future__ import annotations

import pytest
import time_machine
from django.urls import reverse

from audit.models import AuditEvent, AuditKind
from escalations import org_changes
from escalations.models import SlaPolicy
from tests.conftest import berlin
from tests.factories import UserFactory, make_lead, ops_manager


@pytest.fixture
def olga(db):
    return ops_manager()


@pytest.fixture
def root(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture
def unused(org, policies):
    """A policy no lead ever started a timer on."""
    return SlaPolicy.objects.create(
        state="NEW", market=org.india, source=org.inbound_web, window="3h"
    )


@pytest.fixture
def used(org, policies):
    with time_machine.travel(berlin(2026, 3, 2, 10, 0), tick=False):
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    return policies["NEW"]


def _delete_url(policy):
    return reverse("admin:escalations_slapolicy_delete", args=[policy.pk])


def _change_url(policy):
    return reverse("admin:escalations_slapolicy_change", args=[policy.pk])


def test_the_ops_manager_group_has_no_delete_permission_for_policies(olga):
    assert not olga.has_perm("escalations.delete_slapolicy")


def test_an_ops_manager_is_offered_no_delete_and_cannot_force_one(client, olga, unused):
    client.force_login(olga)
    page = client.get(_change_url(unused)).content.decode()
    assert _delete_url(unused) not in page
    assert client.get(_delete_url(unused)).status_code == 403
    assert client.post(_delete_url(unused), {"reason": "tidy up"}).status_code == 403
    assert SlaPolicy.objects.filter(pk=unused.pk).exists()


def test_a_policy_with_timers_offers_no_delete_even_to_a_superuser(client, root, used):
    client.force_login(root)
    page = client.get(_change_url(used)).content.decode()
    assert _delete_url(used) not in page
    assert client.post(_delete_url(used), {"reason": "tidy up"}).status_code == 403
    assert SlaPolicy.objects.filter(pk=used.pk).exists()


def test_a_superusers_delete_asks_for_a_reason_then_is_audited(client, root, unused):
    client.force_login(root)
    assert _delete_url(unused) in client.get(_change_url(unused)).content.decode()
    asked = client.get(_delete_url(unused))
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    refused = client.post(_delete_url(unused), {"reason": ""})
    assert refused.status_code == 200 and SlaPolicy.objects.filter(pk=unused.pk).exists()

    done = client.post(_delete_url(unused), {"reason": "created for the wrong market"})
    assert done.status_code == 302
    assert not SlaPolicy.objects.filter(pk=unused.pk).exists()
    event = AuditEvent.objects.get(kind=AuditKind.POLICY_CHANGED, policy_id=unused.pk)
    assert event.details["deleted"] is True
    assert event.details["reason"] == "created for the wrong market"
    assert event.actor_user_id == root.pk
    record = SlaPolicy.history.filter(id=unused.pk).latest("history_id")
    assert record.history_type == "-"
    assert record.history_change_reason == "created for the wrong market"
    assert record.history_user == root


def test_the_domain_refuses_to_delete_a_policy_timers_name(used):
    with pytest.raises(org_changes.PolicyInUse, match="deactivate it instead"):
        org_changes.delete_policy(used, actor=None, reason="tidy up")
