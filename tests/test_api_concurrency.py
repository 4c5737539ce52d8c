"""Idempotent intake under concurrency, on PostgreSQL: two requests with one external_id at the
same moment make one lead; one answers 201, the other 200 with the same lead."""

from __future__ import annotations

import json
import threading

import pytest
import time_machine
from django.db import connections
from django.test import Client

from escalations.models import SlaTimer
from leadops.models import Lead
from tests.conftest import postgres_transactional
from tests.test_api_leads import LEADS, MONDAY_10, new_lead

# No serialized_rollback: after another transactional test's flush, post_migrate has already
# recreated the content types, and reloading them fails; the groups come back through
# api_fixtures._group instead.
pytestmark = postgres_transactional("concurrent transactions")


def _post_together(n: int, token: str, body: dict) -> list:
    barrier = threading.Barrier(n)
    responses, errors = [None] * n, []

    def run(i):
        try:
            barrier.wait(timeout=10)
            responses[i] = Client().post(
                LEADS,
                json.dumps(body),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Token {token}",
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return responses


@pytest.fixture
def both_past_the_lookup(monkeypatch):
    """Hold each request after its "do I know this external_id?" lookup until both have done
    it, so that both go on to insert: the race the unique index has to settle."""
    barrier = threading.Barrier(2)
    full_clean = Lead.full_clean

    def waiting(self, *args, **kwargs):
        barrier.wait(timeout=10)
        return full_clean(self, *args, **kwargs)

    monkeypatch.setattr(Lead, "full_clean", waiting)


@pytest.mark.usefixtures("both_past_the_lookup")
def test_two_concurrent_creates_with_one_external_id_make_one_lead(api, callers, org, policies):
    with time_machine.travel(MONDAY_10, tick=False):
        responses = _post_together(2, callers.crm.token, new_lead(external_id="crm-race"))

    assert sorted(r.status_code for r in responses) == [200, 201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert Lead.objects.filter(external_id="crm-race").count() == 1
    assert SlaTimer.objects.filter(lead__external_id="crm-race").count() == 1


def test_many_concurrent_creates_with_one_external_id_make_one_lead(api, callers, org, policies):
    with time_machine.travel(MONDAY_10, tick=False):
        responses = _post_together(6, callers.crm.token, new_lead(external_id="crm-burst"))

    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert Lead.objects.filter(external_id="crm-burst").count() == 1
