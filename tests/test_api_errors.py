"""Every error under /api/ has one shape, and hostile input (types, duplicates, encodings,
size, floods) is refused with a clear message and changes nothing (SPEC §12)."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse
from drf_spectacular.validation import validate_schema

from escalations.api.views import leads as lead_views
from leadops import urls
from leadops.models import Lead
from tests.test_api_leads import LEADS, new_lead

SHAPE_KEYS = {"code", "message"}


def error(response) -> dict:
    assert response["Content-Type"] == "application/json", response.content[:200]
    body = response.json()
    assert set(body) == {"error"}
    assert SHAPE_KEYS <= set(body["error"]) <= SHAPE_KEYS | {"fields"}
    return body["error"]


def test_an_unknown_api_path_is_a_json_404_with_a_hint(api, callers, org):
    response = api.get("/api/v1/lead", as_=callers.crm)
    nowhere = api.get("/api/v2/anything/", as_=callers.crm)

    assert response.status_code == 404 and error(response)["code"] == "not_found"
    assert nowhere.status_code == 404 and error(nowhere)["code"] == "not_found"


def test_a_wrong_method_is_405(api, callers, org):
    response = api.client.put(
        LEADS,
        "{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {callers.crm.token}",
    )

    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


def test_a_bad_token_is_401(api, org):
    response = api.client.get(LEADS, HTTP_AUTHORIZATION="Token nope")

    assert response.status_code == 401 and error(response)["code"] == "authentication_failed"


def test_only_json_is_answered(api, callers, org):
    response = api.client.get(
        LEADS, HTTP_AUTHORIZATION=f"Token {callers.crm.token}", HTTP_ACCEPT="text/html"
    )

    assert response.status_code == 406 and error(response)["code"] == "not_acceptable"


@pytest.mark.parametrize(
    ("accept", "query", "status"),
    [
        (None, {}, 200),
        ("*/*", {}, 200),
        ("application/json", {}, 200),
        ("application/json; indent=2", {}, 200),  # negotiated by DRF, not the shortcut
        ("text/html, application/json;q=0.9", {}, 200),
        ("text/html", {}, 406),
        ("*/*", {"format": "json"}, 200),
        ("*/*", {"format": "xml"}, 404),  # DRF: no renderer for that format
    ],
)
def test_json_is_answered_to_whoever_accepts_it(api, callers, org, accept, query, status):
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = api.client.get(
        LEADS, query, HTTP_AUTHORIZATION=f"Token {callers.crm.token}", **headers
    )

    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("application/json")
        assert "results" in response.json()


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "message"),
    [
        ("name=Aisha", "application/x-www-form-urlencoded", 415, "Unsupported media type"),
        ("{}", "text/plain", 415, "Unsupported media type"),
        ('{"name": "A"}', "application/json; charset=latin-1", 415, "charset"),
        ('{"name": "A", "name": "B"}', "application/json", 400, "duplicate key 'name'"),
        ('{"name": NaN}', "application/json", 400, "NaN is not a number"),
        ('{"name": "A\\u0000B"}', "application/json", 400, "NUL"),
        ('{"name": "\\ud800"}', "application/json", 400, "not valid Unicode"),
        ('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", "application/json", 400, "nested"),
        ('{"name": "A"', "application/json", 400, "JSON parse error"),
        ('{"phone": ' + "9" * 5000 + "}", "application/json", 400, "JSON parse error"),
    ],
)
def test_hostile_bodies_are_refused_and_write_nothing(
    api, callers, org, raw, content_type, status, message
):
    response = api.post(LEADS, raw=raw, content_type=content_type, as_=callers.crm)

    assert response.status_code == status
    assert message in error(response)["message"]
    assert not Lead.objects.exists()


def test_a_body_that_is_not_utf8_is_400(api, callers, org):
    raw = json.dumps(new_lead(name="Jürgen"), ensure_ascii=False).encode("latin-1")

    response = api.post(LEADS, raw=raw, as_=callers.crm)

    assert response.status_code == 400 and "not UTF-8" in error(response)["message"]
    assert not Lead.objects.exists()


def test_utf8_names_are_kept_as_sent(api, callers, org, policies):
    raw = json.dumps(new_lead(name="Jürgen Šimůnek 李", company="Ünal ﻿"), ensure_ascii=False)

    response = api.post(LEADS, raw=raw.encode(), as_=callers.crm)

    assert response.status_code == 201, response.json()
    assert Lead.objects.get().name == "Jürgen Šimůnek 李"


def test_a_body_over_the_limit_is_413_before_it_is_read(api, callers, org, settings):
    settings.API_MAX_BODY_BYTES = 2048
    big = new_lead(company="x" * 4000)

    response = api.post(LEADS, big, as_=callers.crm)

    assert response.status_code == 413 and error(response)["code"] == "too_large"
    assert "2048" in error(response)["message"]
    assert not Lead.objects.exists()


def test_writes_over_the_tokens_rate_are_429_with_retry_after(api, callers, org, settings):
    settings.API_THROTTLE_RATES = {"read": "100/min", "write": "3/min"}
    statuses = [
        api.post(LEADS, new_lead(external_id=f"crm-{i}"), as_=callers.crm).status_code
        for i in range(5)
    ]
    throttled = api.post(LEADS, new_lead(external_id="crm-9"), as_=callers.crm)
    other_token = api.post(LEADS, new_lead(external_id="ops-1"), as_=callers.ops)
    reads = api.get(LEADS, as_=callers.crm)

    assert statuses == [201, 201, 201, 429, 429]
    assert throttled.status_code == 429 and error(throttled)["code"] == "throttled"
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert other_token.status_code == 201  # each token has its own budget
    assert reads.status_code == 200  # reads have theirs
    assert Lead.objects.count() == 4


def test_an_unexpected_error_is_a_json_500_and_is_logged(api, callers, org, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(lead_views, "filter_leads", broken)
    response = api.get(LEADS, as_=callers.crm)

    assert response.status_code == 500
    assert error(response) == {
        "code": "server_error",
        "message": "Unexpected error; nothing was changed.",
    }
    assert "boom" not in response.content.decode()
    assert any("API error on GET /api/v1/leads/" in r.message for r in caplog.records)


def test_djangos_own_404_and_500_handlers_answer_json_under_api(rf):
    request = rf.get("/api/v1/leads/1/")
    not_found = urls.handler404(request, None)
    crashed = urls.handler500(request)
    page = urls.handler404(rf.get("/admin/nothing/"), None)

    assert (
        not_found.status_code == 404
        and json.loads(not_found.content)["error"]["code"] == "not_found"
    )
    assert (
        crashed.status_code == 500
        and json.loads(crashed.content)["error"]["code"] == "server_error"
    )
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


# --- session auth, the schema, the docs -----------------------------------------------------------


def test_the_admin_session_works_and_needs_csrf_to_write(callers, org, policies):
    client = Client(enforce_csrf_checks=True)
    client.force_login(callers.ops.user)

    read = client.get(LEADS)
    write = client.post(LEADS, json.dumps(new_lead()), content_type="application/json")

    assert read.status_code == 200
    assert write.status_code == 403 and "CSRF" in error(write)["message"]


def test_the_schema_needs_authentication_and_is_valid_openapi(api, callers, org):
    anonymous = api.client.get("/api/schema/")
    schema = api.get("/api/schema/", as_=callers.nobody, format="json")

    assert anonymous.status_code == 401
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.0")
    validate_schema(document)


def test_every_operation_documents_its_errors(api, callers, org):
    document = api.get("/api/schema/", as_=callers.ops, format="json").json()
    operations = [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
    ]

    assert len(operations) == 14
    for path, method, op in operations:
        codes = set(op["responses"])
        assert {"401", "403", "406", "429"} <= codes, (path, method)
        if method == "post":
            assert {"400", "413", "415"} <= codes, (path, method)
        if "{id}" in path:
            assert "404" in codes, (path, method)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, code)


def test_the_docs_page_asks_for_a_login_then_serves_swagger_without_a_cdn(callers, org):
    client = Client()
    assert client.get("/api/docs/").status_code == 302
    client.force_login(callers.ops.user)

    page = client.get("/api/docs/").content.decode()

    assert "swagger-ui" in page and reverse("api-schema") in page
    # Every asset from this server (the page's CSRF token is random: look at addresses only).
    assets = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert assets and all(a.startswith("/") for a in assets), assets
    assert "https://" not in page
