"""Serializer fields that check shapes strictly: text without control characters, instants with
an explicit offset, things named by their natural key (market and source by code, team by slug,
rep by email). Whether a value is *allowed* (an owner of that team, a move from that state) is
the domain verbs' call, not theirs."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from teams import reference

# C0 controls (but tab, newline, carriage return), DEL and C1 controls.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")


def aware_datetime(value) -> datetime | None:
    """An ISO 8601 instant with an offset, in UTC; None when it is not one (or out of range)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = parse_datetime(value.strip())
        if moment is None or moment.tzinfo is None:
            return None
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


class Text(serializers.CharField):
    """A CharField without control characters; `multiline` allows line breaks (notes)."""

    def __init__(self, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            # CharField would turn 12 or True into "12" / "True": text must come as text.
            self.fail("invalid")
        value = super().to_internal_value(data)
        if CONTROL.search(value):
            raise serializers.ValidationError("Control characters are not allowed.")
        if not self.multiline and LINE_BREAK.search(value):
            raise serializers.ValidationError("Line breaks are not allowed here.")
        return value


@extend_schema_field(OpenApiTypes.DATETIME)
class AwareDateTimeField(serializers.Field):
    """An ISO 8601 instant with its UTC offset (`2026-12-02T09:30:00+01:00` or `...Z`); a
    local time without an offset is refused rather than guessed."""

    default_error_messages = {
        "invalid": "Give an ISO 8601 date-time with a UTC offset, e.g. 2026-12-02T09:30:00Z."
    }

    def to_internal_value(self, data):
        moment = aware_datetime(data)
        if moment is None:
            self.fail("invalid")
        return moment

    def to_representation(self, value):
        return serializers.DateTimeField().to_representation(value) if value else None


class NaturalKeyField(Text):
    """A row named by a unique text column (`Market` by `code`); unknown names are a 400."""

    def __init__(self, *, model, key: str, **kwargs):
        self.model, self.key = model, key
        kwargs.setdefault("max_length", model._meta.get_field(key).max_length)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)  # the text, checked (length included)
        if value is None or isinstance(value, self.model):
            return value
        found = reference.cached(
            ("natural-key", self.model._meta.label, self.key, value),
            lambda: self.model.objects.filter(**{self.key: value}).first(),
        )
        if found is None:
            raise serializers.ValidationError(
                f"No {self.model._meta.verbose_name} with {self.key} {value!r}."
            )
        return found

    def to_representation(self, value):
        return getattr(value, self.key) if hasattr(value, self.key) else value
