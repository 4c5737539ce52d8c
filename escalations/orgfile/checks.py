"""The values of an org file (SPEC §13), one check per kind: each takes what the document holds
(any type: YAML and JSON give str, int, float, bool, None, lists, mappings, dates) and returns
the clean value, or raises `Invalid` saying what was expected. Messages show values through
`show`, shortened and escaped, so a hostile value cannot make a message large or odd."""

from __future__ import annotations

import re
import reprlib
from datetime import date, datetime

from escalations.windows import WindowError, parse_window
from teams import hours as hours_format

# Codes and slugs (SPEC §13): ASCII letters, digits, "_" and "-". Upper and lower case are both
# allowed for every code, market codes included: the SPEC says so, source codes are lower case
# (`paid_social`), and a market created in the admin with a lower-case code must still export
# and load back. What matters is that a look-alike (`IN` + U+200B, a Cyrillic `І`, `ＩＮ`) can
# never pass as a second, different code.
CODE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
# A sane email: ASCII local part and domain (IDN look-alikes are refused), one "@", a dot in the
# domain. Django's EmailValidator runs too, on save.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII,
)
# Never in org text: C0/C1 controls (NUL, ESC, tab, newline; PostgreSQL refuses NUL), lone
# surrogates (not encodable as UTF-8), line and paragraph separators, and the bidirectional
# overrides that make text display differently from what it is.
FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*", re.ASCII)

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 4
_short.maxlevel = 2


def show(value) -> str:
    """A value as it may appear in an error: repr (control characters escaped), shortened."""
    return _short.repr(value)


class Invalid(ValueError):
    """One value is wrong; the message says what was expected."""


def kind(value) -> str:
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({show(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    return f"{type(value).__name__} {show(value)}"


def text(value, max_length: int) -> str | None:
    """Single-line text, stripped; None (or empty) when not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        hint = " (put it in quotes)" if isinstance(value, (bool, int, float, date)) else ""
        raise Invalid(f"must be text, not {kind(value)}{hint}")
    bad = FORBIDDEN.search(value)
    if bad:
        raise Invalid(
            f"contains a control character (U+{ord(bad.group()):04X}) at position {bad.start()}"
        )
    value = value.strip()
    if len(value) > max_length:
        raise Invalid(f"at most {max_length} characters (this has {len(value)})")
    return value or None


def code(value, max_length: int, what: str = "code") -> str | None:
    clean = text(value, max_length)
    if clean is not None and not CODE.fullmatch(clean):
        raise Invalid(
            f"{show(clean)} is not a valid {what}: only ASCII letters, digits, '_' and '-'"
        )
    return clean


def ascii_text(value, max_length: int) -> str | None:
    clean = text(value, max_length)
    if clean is not None and not _PRINTABLE_ASCII.fullmatch(clean):
        raise Invalid(f"{show(clean)} must be ASCII without spaces")
    return clean


def email(value) -> str | None:
    clean = text(value, 254)
    if clean is not None and not EMAIL.fullmatch(clean):
        raise Invalid(f"{show(clean)} is not an email address like name@example.com (ASCII only)")
    return clean.lower() if clean else None


def whole(value, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise Invalid(f"{show(value)} must be a whole number ≥ 0 (at most {maximum})")
    return value


def flag(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{show(value)} must be true or false")
    return value


def choice(values):
    def check(value) -> str:
        if not isinstance(value, str) or value not in values:
            raise Invalid(f"{show(value)} is not one of {', '.join(values)}")
        return value

    return check


def window(value) -> str:
    try:
        return parse_window(value).text
    except WindowError as exc:
        raise Invalid(str(exc)) from None


def week(value) -> dict:
    try:
        return hours_format.normalize_week(value)
    except hours_format.HoursError as exc:
        raise Invalid(str(exc)) from None


def optional_week(value) -> dict | None:
    return None if value is None else week(value)


def instant(value) -> datetime:
    """A PTO bound: an ISO date-time with a UTC offset (YAML may give it already parsed)."""
    parsed = value if isinstance(value, datetime) else None
    if isinstance(value, str) and len(value) <= 40 and value.isascii():
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise Invalid(f"{show(value)} is not a date-time like 2026-12-01T00:00:00+05:30")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise Invalid(f"{show(value)} needs a UTC offset, like +05:30")
    return parsed


def _dates(parse, value):
    try:
        return parse(value)
    except hours_format.HoursError as exc:
        raise Invalid(str(exc)) from None


def closed_dates(value) -> list[str]:
    return sorted(d.isoformat() for d in _dates(hours_format.parse_closed_dates, value))


def open_dates(value) -> list:
    return hours_format.serialize_open_dates(_dates(hours_format.parse_open_dates, value))


def required(check):
    def required(value):
        clean = check(value)
        if clean is None:
            raise Invalid("required")
        return clean

    return required
