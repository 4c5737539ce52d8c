"""Keyset (cursor) pagination, newest first, stable under inserts.

A page is `ORDER BY <key> DESC LIMIT n+1`; the next page starts strictly after the last row's
key (`(occurred_at, id) < (t, i)`), which is unique, so rows written while a client walks the
pages never shift a page: no row is seen twice and none is skipped. No count, no offset: the
cost of a page does not grow with the table or with how far the client has walked. The cursor
is opaque (base64 of the key); a forged or damaged one is a 400."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from rest_framework import serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from escalations.api.fields import aware_datetime
from escalations.api.serializers import Input

MAX_ID = 2**63 - 1


class PageQuery(Input):
    cursor = serializers.CharField(
        required=False, max_length=200, help_text="`next` of the previous page, as given."
    )
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=500, help_text="Rows per page (default 100)."
    )


class KeysetPagination(BasePagination):
    """`keys`: the ordering columns, descending, the last one unique (the primary key)."""

    keys: tuple[str, ...] = ("id",)

    def paginate_queryset(self, queryset, request, view=None):
        query = PageQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        limit = query.validated_data.get("limit") or settings.API_PAGE_SIZE
        cursor = query.validated_data.get("cursor")
        if cursor:
            queryset = queryset.filter(self._after(self._decode(cursor)))
        rows = list(queryset.order_by(*(f"-{k}" for k in self.keys))[: limit + 1])
        self.request = request
        self.next_cursor = self._encode(rows[limit - 1]) if len(rows) > limit else None
        return rows[:limit]

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        return replace_query_param(self.request.build_absolute_uri(), "cursor", self.next_cursor)

    # --- the cursor ------------------------------------------------------------------------

    def _encode(self, row) -> str:
        values = []
        for key in self.keys:
            value = getattr(row, key)
            values.append(value.isoformat() if isinstance(value, datetime) else value)
        raw = json.dumps(values, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode(self, cursor: str) -> list:
        invalid = serializers.ValidationError({"cursor": ["Invalid cursor."]})
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            values = json.loads(raw.decode())
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise invalid from None
        if not isinstance(values, list) or len(values) != len(self.keys):
            raise invalid
        decoded = []
        for key, value in zip(self.keys, values, strict=True):
            if key == self.keys[-1]:  # the primary key
                if type(value) is not int or not 0 <= value <= MAX_ID:
                    raise invalid
                decoded.append(value)
            else:
                moment = aware_datetime(value)
                if moment is None:
                    raise invalid
                decoded.append(moment)
        return decoded

    def _after(self, values: list) -> Q:
        """Rows strictly after `values` in descending key order."""
        if len(self.keys) == 1:
            return Q(**{f"{self.keys[0]}__lt": values[0]})
        first, last = self.keys
        # `first <= t` lets an index on `first` bound the scan; the OR picks the strict order.
        return Q(**{f"{first}__lte": values[0]}) & (
            Q(**{f"{first}__lt": values[0]}) | Q(**{first: values[0], f"{last}__lt": values[1]})
        )

    # --- the schema ------------------------------------------------------------------------

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque cursor: the `next` link of the previous page.",
                "schema": {"type": "string", "maxLength": 200},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "Rows per page (1 to 500, default 100).",
                "schema": {"type": "integer", "minimum": 1, "maximum": 500},
            },
        ]

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page (null on the last one).",
                },
                "results": schema,
            },
        }


class EventPagination(KeysetPagination):
    """By (occurred_at, id): a period filter and the time indexes serve the order."""

    keys = ("occurred_at", "id")
