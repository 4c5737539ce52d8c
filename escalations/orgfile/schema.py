"""What a valid org file is (SPEC §13): the sections and fields it may have, the type and format
of every value, duplicates, and the error that lists the problems found, so that nothing is
changed.

`check_document` is the one gate every document passes before the database is touched, whether
it was read from a file (`parse.read_document`) or arrived already parsed (the API): a value of
the wrong type (a list where a code belongs, `true` where a number belongs, a number where text
belongs), a control character in text, a look-alike code, a non-ASCII window or a duplicate entry
is an error naming the entry and the field, never a traceback. It is pure: it walks the document
by the schema (never deeper than the schema goes, so a deeply nested value costs nothing) and
returns clean values for `load`."""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from datetime import date, datetime

from escalations.models import Clock
from escalations.windows import WindowError, parse_window
from leadops.models import LeadState
from teams import hours as hours_format
from teams.models import Role

TOP_LEVEL = ("thresholds", "markets", "sources", "teams", "reps", "sla_policies")
FIELDS = {
    "thresholds": {"warn", "breach", "reassign"},
    "markets": {"code", "name", "timezone", "holidays", "hours"},
    "holidays": {"country", "subdivision", "extra_closed", "extra_open"},
    "sources": {"code", "name"},
    "teams": {"slug", "name", "market", "slack_channel", "teams_webhook"},
    "reps": {
        "email",
        "name",
        "team",
        "role",
        "slack_user_id",
        "capacity",
        "hours",
        "timezone",
        "active",
        "pto",
    },
    "pto": {"start", "end", "reason"},
    "sla_policies": {"state", "market", "source", "window", "clock", "active"},
}
NATURAL_KEY = {
    "markets": "code",
    "sources": "code",
    "teams": "slug",
    "reps": "email",
    "sla_policies": "state",
}
STATE_ORDER = {state: i for i, state in enumerate(LeadState.values)}

MAX_ERRORS = 50  # listed in a message; the rest are counted ("... and 120 more")
MAX_MESSAGE = 300  # characters of one error line

# Codes and slugs (SPEC §13): ASCII letters, digits, "_" and "-". Upper and lower case are both
# allowed for every code, market codes included: the SPEC says so, source codes are lower case
# (`paid_social`), and a market created in the admin with a lower-case code must still export
# and load back. What matters is that a look-alike (`IN` + U+200B, a Cyrillic `І`, `ＩＮ`) can
# never pass as a second, different code.
_CODE = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
# A sane email: ASCII local part and domain (IDN look-alikes are refused), one "@", a dot in the
# domain. Django's EmailValidator runs too, on save.
_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}",
    re.ASCII,
)
# Never in org text: C0/C1 controls (NUL, ESC, tab, newline; PostgreSQL refuses NUL), lone
# surrogates (not encodable as UTF-8), line and paragraph separators, and the bidirectional
# overrides that make text display differently from what it is.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*", re.ASCII)

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = _short.maxset = 4
_short.maxlevel = 2


def show(value) -> str:
    """A value as it may appear in an error: repr (control characters escaped), shortened."""
    return _short.repr(value)


def _cap(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OrgFileError(Exception):
    """The document is refused, nothing was changed. At most MAX_ERRORS errors are listed (the
    rest counted), each at most MAX_MESSAGE characters: a hostile file cannot make the message
    large."""

    def __init__(self, path: str, errors: list[str], more: int = 0):
        errors = list(errors)
        self.path = _cap(str(path), 300)
        self.errors = [_cap(str(e)) for e in errors[:MAX_ERRORS]]
        self.more = more + max(0, len(errors) - MAX_ERRORS)
        super().__init__(self.path, self.errors, self.more)

    @property
    def total(self) -> int:
        return len(self.errors) + self.more

    def __str__(self) -> str:
        lines = [f"  - {e}" for e in self.errors]
        if self.more:
            lines.append(f"  - ... and {self.more} more")
        body = "\n".join(lines)
        return f"{self.path}: {self.total} error(s), nothing was changed:\n{body}"


class ErrorList:
    """Errors collected while checking and loading, the first MAX_ERRORS kept, the rest counted."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.total = 0

    def add(self, where: str, fieldname: str | None, message: str) -> None:
        self.total += 1
        if len(self.listed) < MAX_ERRORS:
            label = f", field {show(fieldname)}" if fieldname else ""
            self.listed.append(_cap(f"{where}{label}: {message}"))

    def __bool__(self) -> bool:
        return self.total > 0

    def raise_if_any(self, source: str) -> None:
        if self.total:
            raise OrgFileError(source, self.listed, self.total - len(self.listed))


class Invalid(ValueError):
    """One value is wrong; the message says what was expected."""


def _kind(value) -> str:
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({show(value)})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    return f"{type(value).__name__} {show(value)}"


def _text(value, max_length: int) -> str | None:
    """Single-line text, stripped; None (or empty) when not given."""
    if value is None:
        return None
    if not isinstance(value, str):
        hint = " (put it in quotes)" if isinstance(value, (bool, int, float, date)) else ""
        raise Invalid(f"must be text, not {_kind(value)}{hint}")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise Invalid(
            f"contains a control character (U+{ord(bad.group()):04X}) at position {bad.start()}"
        )
    value = value.strip()
    if len(value) > max_length:
        raise Invalid(f"at most {max_length} characters (this has {len(value)})")
    return value or None


def _code(value, max_length: int, what: str = "code") -> str | None:
    text = _text(value, max_length)
    if text is not None and not _CODE.fullmatch(text):
        raise Invalid(
            f"{show(text)} is not a valid {what}: only ASCII letters, digits, '_' and '-'"
        )
    return text


def _ascii(value, max_length: int) -> str | None:
    text = _text(value, max_length)
    if text is not None and not _PRINTABLE_ASCII.fullmatch(text):
        raise Invalid(f"{show(text)} must be ASCII without spaces")
    return text


def _email(value) -> str | None:
    text = _text(value, 254)
    if text is not None and not _EMAIL.fullmatch(text):
        raise Invalid(f"{show(text)} is not an email address like name@example.com (ASCII only)")
    return text.lower() if text else None


def _whole(value, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise Invalid(f"{show(value)} must be a whole number ≥ 0 (at most {maximum})")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"{show(value)} must be true or false")
    return value


def _choice(values):
    def check(value) -> str:
        if not isinstance(value, str) or value not in values:
            raise Invalid(f"{show(value)} is not one of {', '.join(values)}")
        return value

    return check


def _window(value) -> str:
    try:
        return parse_window(value).text
    except WindowError as exc:
        raise Invalid(str(exc)) from None


def _week(value) -> dict:
    try:
        return hours_format.normalize_week(value)
    except hours_format.HoursError as exc:
        raise Invalid(str(exc)) from None


def _optional_week(value) -> dict | None:
    return None if value is None else _week(value)


def _instant(value) -> datetime:
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


def _closed_dates(value) -> list[str]:
    return sorted(d.isoformat() for d in _dates(hours_format.parse_closed_dates, value))


def _open_dates(value) -> list:
    return hours_format.serialize_open_dates(_dates(hours_format.parse_open_dates, value))


def _required(check):
    def required(value):
        clean = check(value)
        if clean is None:
            raise Invalid("required")
        return clean

    return required


def _mapping(errors: ErrorList, where: str, fieldname: str | None, value, known: set) -> bool:
    """Whether `value` is a mapping with known text keys only (else the error is added)."""
    if not isinstance(value, dict):
        errors.add(where, fieldname, f"must be a mapping, not {_kind(value)}")
        return False
    unknown = [k for k in value if not isinstance(k, str) or k not in known]
    if unknown:
        prefix = f"{fieldname}." if fieldname else ""
        name = f"{prefix}{unknown[0]}" if isinstance(unknown[0], str) else unknown[0]
        errors.add(where, name, f"unknown field (known: {', '.join(sorted(known))})")
        return False
    return True


# field → check(value) → clean value. A field absent from the entry is absent from the clean
# values too: `load` decides what absence means (keep the current value, or a default).
CHECKS = {
    "markets": {
        "code": _required(lambda v: _code(v, 8, "market code")),
        "name": lambda v: _text(v, 100),
        "timezone": lambda v: _ascii(v, 64),
        "hours": _week,
    },
    "holidays": {
        "country": lambda v: _code(v, 8, "country code"),
        "subdivision": lambda v: _code(v, 16, "subdivision code"),
        "extra_closed": _closed_dates,
        "extra_open": _open_dates,
    },
    "sources": {
        "code": _required(lambda v: _code(v, 50, "source code")),
        "name": lambda v: _text(v, 100),
    },
    "teams": {
        "slug": _required(lambda v: _code(v, 64, "team slug")),
        "name": lambda v: _text(v, 100),
        "market": _required(lambda v: _code(v, 8, "market code")),
        "slack_channel": lambda v: _text(v, 32),
        "teams_webhook": lambda v: _ascii(v, 500),
    },
    "reps": {
        "email": _required(_email),
        "name": lambda v: _text(v, 100),
        "team": _required(lambda v: _code(v, 64, "team slug")),
        "role": _choice(Role.values),
        "slack_user_id": lambda v: _text(v, 32),
        "capacity": lambda v: _whole(v, 2**31 - 1),
        "hours": _optional_week,
        "timezone": lambda v: _ascii(v, 64),
        "active": _flag,
    },
    "pto": {
        "start": _instant,
        "end": _instant,
        "reason": lambda v: _text(v, 200) or "",
    },
    "sla_policies": {
        "state": _choice(LeadState.values),
        "market": lambda v: _code(v, 8, "market code"),
        "source": lambda v: _code(v, 50, "source code"),
        "window": _window,
        "clock": _choice(Clock.values),
        "active": _flag,
    },
    "thresholds": {
        "warn": lambda v: _whole(v, 32767),
        "breach": lambda v: _whole(v, 32767),
        "reassign": lambda v: _whole(v, 32767),
    },
}
# Checked even when absent (a required field, or a default that must be checked: a market's
# hours and a policy's window).
PRESENT = {
    "markets": ("code", "hours"),
    "sources": ("code",),
    "teams": ("slug", "market"),
    "reps": ("email", "team"),
    "pto": ("start", "end"),
    "sla_policies": ("state", "window"),
}


@dataclass
class Entry:
    where: str  # "reps[3] (asha@example.com)", for error messages
    values: dict  # clean values of the fields the entry has


def _label(value) -> str:
    """An entry's natural key as it may appear in a message: as written if it is short
    printable ASCII (every valid key is), else quoted and escaped (`'IN\\u200b'`)."""
    if isinstance(value, str) and len(value) <= 80 and value.isascii() and value.isprintable():
        return value
    return "?" if value is None else show(value)


def _check_fields(
    errors: ErrorList, section: str, where: str, entry: dict, prefix: str = ""
) -> dict | None:
    clean, ok = {}, True
    for name, check in CHECKS[section].items():
        if name not in entry and name not in PRESENT.get(section, ()):
            continue
        try:
            clean[name] = check(entry.get(name))
        except Invalid as exc:
            errors.add(where, prefix + name, str(exc))
            ok = False
    return clean if ok else None


def _check_market(errors: ErrorList, where: str, entry: dict) -> dict | None:
    clean = _check_fields(errors, "markets", where, entry)
    holidays = entry.get("holidays")
    if holidays is None:
        holidays = {}
    if not _mapping(errors, where, "holidays", holidays, FIELDS["holidays"]):
        return None
    values = _check_fields(errors, "holidays", where, holidays, prefix="holidays.")
    if clean is None or values is None:
        return None
    clean["holidays"] = values
    return clean


def _check_rep(errors: ErrorList, where: str, entry: dict) -> dict | None:
    clean = _check_fields(errors, "reps", where, entry)
    if "pto" not in entry:
        return clean
    items = entry["pto"] if entry["pto"] is not None else []
    if not isinstance(items, (list, tuple)):
        errors.add(where, "pto", f"must be a list of {{start, end, reason}}, not {_kind(items)}")
        return None
    ranges, seen, ok = [], {}, clean is not None
    for i, item in enumerate(items):
        pwhere = f"{where} pto[{i}]"
        if not _mapping(errors, pwhere, None, item, FIELDS["pto"]):
            ok = False
            continue
        values = _check_fields(errors, "pto", pwhere, item)
        if values is None:
            ok = False
            continue
        start, end = values["start"], values["end"]
        if end <= start:
            errors.add(pwhere, "end", "must be after start")
            ok = False
            continue
        if (start, end) in seen:  # aware datetimes compare as instants, whatever the offset
            errors.add(pwhere, None, f"the same range as pto[{seen[(start, end)]}]")
            ok = False
            continue
        seen[(start, end)] = i
        ranges.append((start, end, values.get("reason", "")))
    if not ok:
        return None
    clean["pto"] = ranges
    return clean


def _check_section(errors: ErrorList, data: dict, section: str) -> list[Entry]:
    value = data.get(section)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        errors.add(section, None, f"must be a list of mappings, not {_kind(value)}")
        return []
    entries = []
    for i, entry in enumerate(value):
        label = _label(entry.get(NATURAL_KEY[section])) if isinstance(entry, dict) else "?"
        where = f"{section}[{i}] ({label})"
        if not _mapping(errors, where, None, entry, FIELDS[section]):
            continue
        if section == "markets":
            clean = _check_market(errors, where, entry)
        elif section == "reps":
            clean = _check_rep(errors, where, entry)
        else:
            clean = _check_fields(errors, section, where, entry)
        if clean is not None:
            entries.append(Entry(where, clean))
    return entries


def _policy_key(values: dict) -> tuple:
    return (values["state"], values.get("market"), values.get("source"))


# section → (what the duplicate shares, its key). Emails are lower-cased by `_email`, so reps
# are compared case-insensitively, as the database looks them up.
DUPLICATES = {
    "markets": ("code", lambda v: v["code"]),
    "sources": ("code", lambda v: v["code"]),
    "teams": ("slug", lambda v: v["slug"]),
    "reps": ("email", lambda v: v["email"]),
    "sla_policies": ("(state, market, source)", _policy_key),
}


def _refuse_duplicates(errors: ErrorList, section: str, entries: list[Entry]) -> list[Entry]:
    what, key = DUPLICATES[section]
    seen: dict = {}
    unique = []
    for entry in entries:
        k = key(entry.values)
        if k in seen:
            errors.add(entry.where, None, f"the same {what} as {seen[k]}")
            continue
        seen[k] = entry.where
        unique.append(entry)
    return unique


@dataclass
class Document:
    """A checked document: clean entries per section, thresholds if given."""

    sections: dict[str, list[Entry]]
    thresholds: dict | None


def check_document(data, errors: ErrorList) -> Document:
    """Check every value's type and format and refuse duplicates, without the database. Errors
    go to `errors`; the returned document holds the entries that passed."""
    document = Document(sections={}, thresholds=None)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.add("the document", None, f"must be a mapping of {', '.join(TOP_LEVEL)}")
        return document
    for key in data:
        if not isinstance(key, str) or key not in TOP_LEVEL:
            errors.add(f"unknown top-level key {show(key)}", None, f"known: {', '.join(TOP_LEVEL)}")
    for section in TOP_LEVEL[1:]:
        entries = _check_section(errors, data, section)
        document.sections[section] = _refuse_duplicates(errors, section, entries)
    thresholds = data.get("thresholds")
    if thresholds is not None and _mapping(
        errors, "thresholds", None, thresholds, FIELDS["thresholds"]
    ):
        document.thresholds = _check_fields(errors, "thresholds", "thresholds", thresholds)
    return document


FILE_FIELD = {
    "holiday_country": "holidays.country",
    "holiday_subdivision": "holidays.subdivision",
    "extra_closed_dates": "holidays.extra_closed",
    "extra_open_dates": "holidays.extra_open",
    "slack_channel_id": "slack_channel",
    "teams_webhook_url": "teams_webhook",
    "__all__": None,
}


def file_field(model_field: str) -> str | None:
    return FILE_FIELD.get(model_field, model_field)
