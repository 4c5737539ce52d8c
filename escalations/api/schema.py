"""Touches drf-spectacular cannot infer, applied to the whole document once: the headers that
come with some answers (`Retry-After` on 429, `Location` on a created lead)."""

from __future__ import annotations

HEADERS = {
    "429": {
        "Retry-After": {
            "description": "Seconds to wait before the next request.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
LOCATION = {
    "Location": {
        "description": "The new lead's URL.",
        "required": True,
        "schema": {"type": "string"},
    }
}


def add_response_headers(result, generator, request, public):
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                headers = HEADERS.get(status, {})
                if status == "201" and operation.get("operationId") == "leads_create":
                    headers = LOCATION
                if headers:
                    response.setdefault("headers", {}).update(headers)
    return result
