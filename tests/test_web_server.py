"""The API through the production web server (granian, as `leadops.bench.server` and the
README run it), at the wire: keep-alive requests on one connection, a lead created (201 with its
Location) and repeated (200, the same lead), read back with its SLA, and the errors a server in
front could get wrong (no token, an oversized body refused before it is read, malformed JSON),
each in the API's one error shape. PostgreSQL: the server process has its own connections and
reads what the test committed."""

from __future__ import annotations

import http.client
import json
import uuid

import pytest

from escalations.api.errors import CODES
from leadops.bench.server import database_url, serving
from leadops.models import Lead
from tests.conftest import postgres_transactional

pytestmark = postgres_transactional("the server process reads what the test committed")

LIMIT = 4096


@pytest.fixture
def server(org, policies):
    environment = {
        "DATABASE_URL": database_url(application_name="leadops-test-web-server"),
        "DEBUG": "false",
        "SECRET_KEY": "test-only-" + uuid.uuid4().hex,
        "ALLOWED_HOSTS": "127.0.0.1",
        "API_MAX_BODY_BYTES": str(LIMIT),
        "LOG_LEVEL": "ERROR",
    }
    with serving(environment, threads=2) as running:
        connection = http.client.HTTPConnection("127.0.0.1", running.port, timeout=30)
        yield connection
        connection.close()


def _send(connection, method, path, body=None, token=None, raw=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    return response.status, response.headers, json.loads(response.read() or b"{}")


def test_a_lead_is_created_once_and_read_back_through_the_production_server(server, callers, org):
    lead = {
        "name": "Aisha Al-Mansoori",
        "market": "DE",
        "source": "inbound_web",
        "team": "de-berlin",
        "owner": "lena@example.com",
        "external_id": "crm-wire-1",
    }
    status, headers, created = _send(server, "POST", "/api/v1/leads/", lead, callers.crm.token)
    assert status == 201, created
    assert headers["Location"] == f"/api/v1/leads/{created['id']}/"
    assert created["sla"]["status"] == "on_track" and created["owner"] == "lena@example.com"

    status, _, again = _send(server, "POST", "/api/v1/leads/", lead, callers.crm.token)
    assert (status, again["id"]) == (200, created["id"])

    status, _, read = _send(server, "GET", headers["Location"], token=callers.ops.token)
    assert (status, read["sla"]["due_at"]) == (200, created["sla"]["due_at"])
    assert Lead.objects.filter(external_id="crm-wire-1").count() == 1


def test_errors_keep_their_status_and_shape_through_the_production_server(server, callers):
    status, _, body = _send(server, "GET", "/api/v1/leads/")
    assert (status, body["error"]["code"]) == (401, CODES[401][0])

    big = json.dumps({"name": "x" * (LIMIT + 1)}).encode()
    status, _, body = _send(server, "POST", "/api/v1/leads/", raw=big, token=callers.crm.token)
    assert (status, body["error"]["code"]) == (413, CODES[413][0])

    status, _, body = _send(server, "POST", "/api/v1/leads/", raw=b"{", token=callers.crm.token)
    assert (status, body["error"]["code"]) == (400, CODES[400][0])
    # The connection is still usable after each refusal (keep-alive).
    status, _, _ = _send(server, "GET", "/api/v1/leads/", token=callers.ops.token)
    assert status == 200
    assert Lead.objects.count() == 0
