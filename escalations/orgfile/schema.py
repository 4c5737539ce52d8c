"""What a valid org file is (SPEC §13): the sections and fields it may have, the check of every
value (`checks`), duplicates, and the error that lists the problems found, so that nothing is
changed.

`check_document` is the one gate every document passes before the database is touched, whether
it was read from a file (`parse.read_document`) or arrived already parsed (the API): a value of
the wrong type (a list where a code belongs, `true` where a number belongs, a number where text
belongs), a control character in text, a look-alike code, a non-ASCII window or a duplicate entry
is an error naming the entry and the field, never a traceback. It is pure: it walks the document
by the schema (never deeper than the schema goes, so a deeply nested value costs nothing) and
returns clean values for `load`."""

from __future__ import annotations

from dataclasses import dataclass

from escalations.models import Clock
from escalations.orgfile import checks
from leadops.models import LeadState
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
            label = f", field {checks.show(fieldname)}" if fieldname is not None else ""
            self.listed.append(_cap(f"{where}{label}: {message}"))

    def raise_if_any(self, source: str) -> None:
        if self.total:
            raise OrgFileError(source, self.listed, self.total - len(self.listed))


def _mapping(errors: ErrorList, where: str, fieldname: str | None, value, known: set) -> bool:
    """Whether `value` is a mapping with known text keys only (else the error is added)."""
    if not isinstance(value, dict):
        errors.add(where, fieldname, f"must be a mapping, not {checks.kind(value)}")
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
        "code": checks.required(lambda v: checks.code(v, 8, "market code")),
        "name": lambda v: checks.text(v, 100),
        "timezone": lambda v: checks.ascii_text(v, 64),
        "hours": checks.week,
    },
    "holidays": {
        "country": lambda v: checks.code(v, 8, "country code"),
        "subdivision": lambda v: checks.code(v, 16, "subdivision code"),
        "extra_closed": checks.closed_dates,
        "extra_open": checks.open_dates,
    },
    "sources": {
        "code": checks.required(lambda v: checks.code(v, 50, "source code")),
        "name": lambda v: checks.text(v, 100),
    },
    "teams": {
        "slug": checks.required(lambda v: checks.code(v, 64, "team slug")),
        "name": lambda v: checks.text(v, 100),
        "market": checks.required(lambda v: checks.code(v, 8, "market code")),
        "slack_channel": lambda v: checks.text(v, 32),
        "teams_webhook": lambda v: checks.ascii_text(v, 500),
    },
    "reps": {
        "email": checks.required(checks.email),
        "name": lambda v: checks.text(v, 100),
        "team": checks.required(lambda v: checks.code(v, 64, "team slug")),
        "role": checks.choice(Role.values),
        "slack_user_id": lambda v: checks.text(v, 32),
        "capacity": lambda v: checks.whole(v, 2**31 - 1),
        "hours": checks.optional_week,
        "timezone": lambda v: checks.ascii_text(v, 64),
        "active": checks.flag,
    },
    "pto": {
        "start": checks.instant,
        "end": checks.instant,
        "reason": lambda v: checks.text(v, 200) or "",
    },
    "sla_policies": {
        "state": checks.choice(LeadState.values),
        "market": lambda v: checks.code(v, 8, "market code"),
        "source": lambda v: checks.code(v, 50, "source code"),
        "window": checks.window,
        "clock": checks.choice(Clock.values),
        "active": checks.flag,
    },
    "thresholds": {
        "warn": lambda v: checks.whole(v, 32767),
        "breach": lambda v: checks.whole(v, 32767),
        "reassign": lambda v: checks.whole(v, 32767),
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
    return "?" if value is None else checks.show(value)


def _check_fields(
    errors: ErrorList, section: str, where: str, entry: dict, prefix: str = ""
) -> dict | None:
    clean, ok = {}, True
    for name, check in CHECKS[section].items():
        if name not in entry and name not in PRESENT.get(section, ()):
            continue
        try:
            clean[name] = check(entry.get(name))
        except checks.Invalid as exc:
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
        errors.add(
            where, "pto", f"must be a list of {{start, end, reason}}, not {checks.kind(items)}"
        )
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
        errors.add(section, None, f"must be a list of mappings, not {checks.kind(value)}")
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


# section → (what the duplicate shares, its key). Emails are lower-cased by `email`, so reps
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
            errors.add(
                f"unknown top-level key {checks.show(key)}", None, f"known: {', '.join(TOP_LEVEL)}"
            )
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
