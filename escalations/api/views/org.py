"""The org file over HTTP (SPEC §13, policy as code): `GET` exports it as JSON, `POST` loads it
through `escalations.orgfile.load_document`, all or nothing, with `?dry_run=1` to see what would
change. The request body is checked against the same JSON schema the OpenAPI document shows
(types and field names, from `orgfile.schema.FIELDS`); everything else (known markets, valid
windows and zones, one manager per team...) is the loader's call."""

from __future__ import annotations

import copy

import jsonschema
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from escalations.api.errors import responses
from escalations.api.serializers import OrgLoadReport, OrgQuery
from escalations.api.views.base import ApiView, query
from escalations.orgfile import export_document, load_document
from escalations.orgfile.schema import FIELDS, TOP_LEVEL
from leadops.models import LeadState

CODE = {"type": "string", "maxLength": 64}
TEXT = {"type": "string", "maxLength": 500}
OPTIONAL_TEXT = {"type": "string", "maxLength": 500, "nullable": True}
INSTANT = {"type": "string", "maxLength": 40, "description": "ISO 8601 with a UTC offset"}
DATES = {"type": "array", "maxItems": 1000, "items": {"type": "string", "maxLength": 10}}
OPEN_DATE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["date"],
    "properties": {
        "date": {"type": "string", "maxLength": 10},
        "hours": {"type": "array", "nullable": True, "items": {"type": "string", "maxLength": 11}},
    },
}
WEEK = {
    "type": "object",
    "description": "mon..sun: lists of HH:MM-HH:MM intervals",
    "additionalProperties": {
        "type": "array",
        "nullable": True,
        "maxItems": 24,
        "items": {"type": "string", "maxLength": 11},
    },
}
FIELD_SCHEMAS = {
    "thresholds": {"warn": {"type": "integer"}, "breach": {"type": "integer"}},
    "markets": {"code": CODE, "name": TEXT, "timezone": CODE, "holidays": None, "hours": WEEK},
    "holidays": {
        "country": {**CODE, "nullable": True},
        "subdivision": {**CODE, "nullable": True},
        "extra_closed": {**DATES, "nullable": True},
        "extra_open": {
            "type": "array",
            "nullable": True,
            "maxItems": 1000,
            "items": {"oneOf": [{"type": "string", "maxLength": 10}, OPEN_DATE]},
        },
    },
    "sources": {"code": CODE, "name": TEXT},
    "teams": {
        "slug": CODE,
        "name": TEXT,
        "market": CODE,
        "slack_channel": OPTIONAL_TEXT,
        "teams_webhook": OPTIONAL_TEXT,
    },
    "reps": {
        "email": {"type": "string", "maxLength": 254},
        "name": TEXT,
        "team": CODE,
        "role": {"type": "string", "enum": ["rep", "lead", "manager"]},
        "slack_user_id": OPTIONAL_TEXT,
        "capacity": {"type": "integer", "minimum": 0, "maximum": 100_000},
        "hours": {**WEEK, "nullable": True},
        "timezone": {**CODE, "nullable": True},
        "active": {"type": "boolean"},
        "pto": None,
    },
    "pto": {"start": INSTANT, "end": INSTANT, "reason": OPTIONAL_TEXT},
    "sla_policies": {
        "state": {"type": "string", "enum": LeadState.values},
        "market": {**CODE, "nullable": True},
        "source": {**CODE, "nullable": True},
        "window": {"type": "string", "maxLength": 16, "description": "90m, 4h or 2bd"},
        "clock": {"type": "string", "enum": ["business", "calendar"]},
        "active": {"type": "boolean"},
    },
}
REQUIRED = {"markets": ["code"], "sources": ["code"], "teams": ["slug", "market"]}
REQUIRED.update({"reps": ["email", "team"], "sla_policies": ["state", "window"]})
REQUIRED.update({"pto": ["start", "end"]})


def _entry(section: str) -> dict:
    properties = {}
    for name in sorted(FIELDS[section]):
        spec = FIELD_SCHEMAS[section].get(name, {"type": "integer"})
        if spec is None:  # a nested section
            nested = _entry(name)
            spec = {"type": "array", "maxItems": 1000, "items": nested} if name == "pto" else nested
            spec = {**spec, "nullable": True}
        properties[name] = spec
    entry = {"type": "object", "additionalProperties": False, "properties": properties}
    if section in REQUIRED:
        entry["required"] = REQUIRED[section]
    return entry


ORG_DOCUMENT = {
    "type": "object",
    "additionalProperties": False,
    "description": "The org file (SPEC §13) as JSON; every section is optional.",
    "properties": {
        section: (
            {**_entry(section), "nullable": True}
            if section == "thresholds"
            else {"type": "array", "nullable": True, "maxItems": 10_000, "items": _entry(section)}
        )
        for section in TOP_LEVEL
    },
}


def _json_schema(node):
    """OpenAPI 3.0's `nullable` as JSON Schema's `type: [..., "null"]`, for the validator."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if node.get("nullable") and "enum" in node:
        out["enum"] = [*node["enum"], None]
    return out


VALIDATOR = jsonschema.Draft7Validator(_json_schema(copy.deepcopy(ORG_DOCUMENT)))


def check_shape(document) -> None:
    """400 naming every field whose type or name does not fit the schema."""
    errors: dict[str, list[str]] = {}
    for error in sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))[:50]:
        where = ".".join(str(p) for p in error.absolute_path) or "document"
        errors.setdefault(where, []).append(error.message[:300])
    if errors:
        raise ValidationError(errors)


class OrgView(ApiView):
    required_perms = {"GET": "escalations.load_org", "POST": "escalations.load_org"}
    reference_snapshot = False  # it writes the org: every read here goes to the database

    @extend_schema(
        tags=["org"],
        operation_id="org_export",
        summary="The org file as JSON (what export_org writes)",
        responses={200: ORG_DOCUMENT, **responses(401, 403, 406, 429)},
    )
    def get(self, request):
        return Response(export_document())

    @extend_schema(
        tags=["org"],
        operation_id="org_load",
        summary="Load the org file (all or nothing; ?dry_run=1 writes nothing)",
        description=(
            "Creates or updates markets, calendars, sources, teams, reps (with time off), "
            "thresholds and SLA policies in one transaction, like `manage.py load_org`. A bad "
            "document changes nothing: the 400 lists every problem under `fields`."
        ),
        parameters=[OrgQuery],
        request={"application/json": ORG_DOCUMENT},
        examples=[
            OpenApiExample(
                "A new source and its NEW-lead policy",
                value={
                    "sources": [{"code": "events", "name": "Events"}],
                    "sla_policies": [{"state": "NEW", "source": "events", "window": "4h"}],
                },
                request_only=True,
            )
        ],
        responses={200: OrgLoadReport, **responses(400, 401, 403, 406, 413, 415, 429)},
    )
    def post(self, request):
        dry_run = query(OrgQuery, request)["dry_run"]
        check_shape(request.data)
        report = load_document(
            request.data, source="API request", actor=request.user, dry_run=dry_run
        )
        return Response(
            {
                "dry_run": report.dry_run,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "side_effects": report.side_effects,
                "summary": report.summary(),
            }
        )
