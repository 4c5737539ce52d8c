"""The one request body format: JSON in UTF-8, read strictly. A duplicate key in an object,
NaN/Infinity, a lone surrogate or a NUL character, nesting deep enough to exhaust the parser, or
a number too long to convert: each is a 400 with a message, never a 500 or a silent "last key
wins". Any charset but UTF-8 (or its ASCII subset) is a 415."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser

from escalations.api.errors import PayloadTooLarge

MAX_DEPTH = 32


def _no_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ParseError(f"JSON parse error: duplicate key {key!r} in an object.")
        seen[key] = value
    return seen


def _no_constants(name):
    raise ParseError(f"JSON parse error: {name} is not a number.")


def _check(value, depth: int = 0) -> None:
    """Refuse what JSON allows but no field of ours may hold."""
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON parse error: nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError("JSON parse error: text may not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError("JSON parse error: text is not valid Unicode.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


class StrictJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        charset = "utf-8"
        for param in (media_type or "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"').lower()
        if charset not in ("utf-8", "utf8", "us-ascii", "ascii"):
            raise UnsupportedMediaType(media_type, detail=f"Unsupported charset {charset!r}.")
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:  # a body without a Content-Length (chunked) that is too big
            raise PayloadTooLarge(f"The request body is over {limit} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error: not UTF-8 ({exc.reason}).") from None
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
        except RecursionError:
            raise ParseError("JSON parse error: nested too deeply.") from None
        except ValueError as exc:  # JSONDecodeError, too many digits for an int
            raise ParseError(f"JSON parse error: {exc}") from None
        _check(data)
        return data
