"""The API fuzzed against its own live OpenAPI schema with schemathesis (SPEC §12): every
operation, with its documented examples, boundary cases and generated (also schema-breaking)
input, authenticated as an ops manager. No 5xx, and no answer that contradicts the schema
(status codes, content types, headers, bodies), nor any schema-breaking input accepted.

`LEADOPS_FUZZ_REQUESTS=N` (set by .ci/run) asks for at least N requests in total; by default a
few per operation keep `make test` quick."""

from __future__ import annotations

import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings

from escalations.reassign import reassign_lead
from tests.factories import make_lead

MIN_REQUESTS = int(os.environ.get("LEADOPS_FUZZ_REQUESTS") or 0)
# Full (CI): the documented examples, the coverage phase (boundaries and every kind of
# schema-breaking value, deterministic) and many generated cases. Default: a quick pass.
EXAMPLES = 40 if MIN_REQUESTS else 4
SENT = {"requests": 0, "statuses": {}}


@pytest.fixture
def same_connection():
    """Requests through the bare WSGI handler would close the test's database connection (and
    its transaction) after each request; Django's test client unhooks this the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(org, policies, callers, settings, same_connection):
    """Something behind the ids: leads in both teams (one reassigned) for the path ids to hit,
    and the rep the schema's examples name."""
    settings.API_THROTTLE_RATES = {"read": "1000000/min", "write": "1000000/min"}
    org.asha.email = "asha@demo.leadops"
    org.asha.save()
    leads = [
        make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena, name=f"L{i}")
        for i in range(3)
    ] + [make_lead(team=org.india_team, source=org.inbound_web, owner=org.asha, name="A")]
    moved = reassign_lead(leads[0], org.felix, cause="manual", actor=None)
    return {"token": callers.ops.token, "ids": [lead.pk for lead in leads] + [moved.pk]}


def generated_schema() -> dict:
    """The document /api/schema/ serves, built by the same generator (the endpoint itself needs
    a token, hence a database, which collection time does not have; the test below checks that
    both are the same)."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


# A well-formed but unknown market code or cursor is a documented 400, not a breach of the
# schema: `positive_data_acceptance` is off. Schema-breaking input must be refused, and a 413
# (over the body limit) is a refusal too. Every other built-in check runs.
CONFIG = schemathesis.Config.from_dict(
    {
        "phases": {"coverage": {"enabled": bool(MIN_REQUESTS)}},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429]
            },
        },
    }
)
DOCUMENT = generated_schema()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = WSGIHandler()  # calls go through the whole Django stack, in this process


def test_the_fuzzed_schema_is_the_one_the_api_serves(api, callers):
    served = api.get("/api/schema/", as_=callers.ops, format="json")

    assert served.status_code == 200 and served.json() == DOCUMENT


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_as_its_schema_says(case, world):
    if "id" in (case.path_parameters or {}):
        # Half the generated ids are swapped for real ones, so requests get past the 404.
        generated = case.path_parameters["id"]
        if isinstance(generated, int) and generated % 2 == 0:
            case.path_parameters["id"] = world["ids"][generated % len(world["ids"])]
    response = case.call_and_validate(headers={"Authorization": f"Token {world['token']}"})
    SENT["requests"] += 1
    SENT["statuses"][response.status_code] = SENT["statuses"].get(response.status_code, 0) + 1


def test_the_fuzzing_sent_enough_requests():
    if not SENT["requests"]:
        pytest.skip("the fuzz test did not run in this session")
    print(f"schemathesis: {SENT['requests']} requests, statuses {sorted(SENT['statuses'].items())}")
    assert SENT["requests"] >= MIN_REQUESTS
    assert set(SENT["statuses"]) & {200, 201}, "nothing got past validation"
