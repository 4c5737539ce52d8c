"""Loading the org file (SPEC §13): markets, calendars, sources, teams, reps with PTO, thresholds
and SLA policies, created or updated all or nothing. A bad file changes nothing and every error
names the entry and the field. Saves with consequences (a calendar, a policy switched off, a rep
made inactive) go through `escalations.org_changes`, applied once the whole file is saved.
`dry_run` does all of it and rolls back, to report what would change.

`load_document` first runs `schema.check_document` (types, formats, duplicates; no database), so
this module only ever sees clean values. The rows the file names are read a section at a time
(one query per 500 keys), so an entry that changes nothing costs no query, and one that changes
costs a fixed few: a large file cannot make the work per entry grow."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from escalations.models import Clock, SlaPolicy, SlaThresholds
from escalations.org_changes import OrgChangeSet
from escalations.orgfile.parse import read_document
from escalations.orgfile.schema import (
    NATURAL_KEY,
    Document,
    ErrorList,
    OrgFileError,
    check_document,
    file_field,
)
from leadops.actors import resolve_actor
from leadops.models import Source
from teams.models import Market, Rep, Role, Team, TimeOff


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    side_effects: list[str] = field(default_factory=list)
    dry_run: bool = False  # nothing was written: the figures say what would change

    def count(self, what: str, outcome: str) -> None:
        bucket = getattr(self, outcome)
        bucket[what] = bucket.get(what, 0) + 1

    def summary(self) -> str:
        parts = []
        for what in ("markets", "sources", "teams", "reps", "pto", "thresholds", "sla_policies"):
            c, u = self.created.get(what, 0), self.updated.get(what, 0)
            s = self.unchanged.get(what, 0)
            if c or u or s:
                parts.append(f"{what}: {c} created, {u} updated, {s} unchanged")
        text = "; ".join(parts + self.side_effects) or "nothing in the file"
        return f"dry run, nothing written: {text}" if self.dry_run else text


def load_org(path: str | Path, *, actor=None, dry_run: bool = False) -> LoadReport:
    """Create or update everything in the file, in one transaction (`dry_run`: roll it back and
    only report what would change)."""
    return load_document(read_document(path), source=str(path), actor=actor, dry_run=dry_run)


CHUNK = 500  # keys per `IN (...)` query, well under SQLite's variable limit

# Model validation without the queries this module has already answered, so that a created or
# changed entry costs a fixed few queries: every row was looked up by its natural key (so a
# unique check cannot fail, and a policy's four conditional unique constraints, two queries
# each, neither), a team's market and a rep's team were just resolved, and a rep's one-manager
# rule is checked by `_load_reps` and `Rep.clean`. Only a concurrent writer could break one of
# these; the database constraints stop it and `load_document` reports it.
FULL_CLEAN = {
    "markets": {"validate_unique": False},
    "sources": {"validate_unique": False},
    "teams": {"exclude": ["market"], "validate_unique": False},
    "reps": {"exclude": ["team"], "validate_unique": False, "validate_constraints": False},
    "sla_policies": {"exclude": ["market", "source"], "validate_constraints": False},
}


def _by_key(queryset, lookup: str, keys) -> dict:
    """The rows whose `lookup` is one of `keys`, by that value (one query per CHUNK keys)."""
    keys = sorted(set(keys))
    found = {}
    for i in range(0, len(keys), CHUNK):
        for obj in queryset.filter(**{f"{lookup}__in": keys[i : i + CHUNK]}):
            found[getattr(obj, lookup)] = obj
    return found


class _Loader:
    def __init__(self, source: str, actor, errors: ErrorList, refused: dict[str, set]):
        self.actor = resolve_actor(actor)
        self.errors = errors
        # Per section, the natural keys of entries that were refused (by the checks or when
        # saving): a reference to one is not reported again as "no market 'IN'"; the entry's
        # own errors say what is wrong.
        self.refused = refused
        self.report = LoadReport()
        self.markets: dict[str, Market | None] = {}  # by code: the file's, then the database's
        self.sources: dict[str, Source | None] = {}
        self.teams: dict[str, Team | None] = {}
        self.reason = f"org file {Path(source).name}"[:100]
        self.changes = OrgChangeSet(actor=self.actor, reason=self.reason)
        # What saves each section: the ones with consequences go through the change set.
        self.savers = {
            "markets": self.changes.save_market,
            "reps": self.changes.save_rep,
            "thresholds": self.changes.save_thresholds,
            "sla_policies": self.changes.save_policy,
        }

    def error(self, where: str, fieldname: str | None, message: str) -> None:
        self.errors.add(where, fieldname, message)

    def save(self, obj, what: str, where: str, *, changed: bool, created: bool) -> bool:
        if not (created or changed):
            self.report.count(what, "unchanged")
            return True
        try:
            obj.full_clean(**FULL_CLEAN.get(what, {}))
        except ValidationError as exc:
            for fieldname, messages in exc.message_dict.items():
                self.error(where, file_field(fieldname), " ".join(messages))
            return False
        saver = self.savers.get(what)
        if saver is not None:
            saver(obj)
        else:
            obj._history_user = self.actor.user
            obj._change_reason = self.reason
            obj.save()
        self.report.count(what, "created" if created else "updated")
        return True

    def lookup(self, cache: dict, model, field: str, code: str, where: str, fieldname: str):
        """The object a code refers to: saved from the file, or already in the database."""
        if code not in cache:
            cache[code] = model.objects.filter(**{field: code}).first()
        obj = cache[code]
        if obj is None and code not in self.refused.get(f"{fieldname}s", ()):
            self.error(where, fieldname, f"no {fieldname} {code!r} in the file or the database")
        return obj


def _assign(obj, values: dict) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


def _refused_keys(data, document: Document) -> dict[str, set]:
    """Per referenced section, the natural keys written in the file whose entries the checks
    refused."""
    refused: dict[str, set] = {}
    data = data if isinstance(data, dict) else {}  # None is an empty document
    for section in ("markets", "sources", "teams"):
        field = NATURAL_KEY[section]
        kept = {entry.values[field] for entry in document.sections[section]}
        entries = data.get(section)
        refused[section] = {
            entry.get(field)
            for entry in (entries if isinstance(entries, list) else [])
            if isinstance(entry, dict)
            and isinstance(entry.get(field), str)
            and entry.get(field) not in kept
        }
    return refused


class _DryRun(Exception):
    """Raised to roll a dry run back once its report is complete."""


def load_document(
    data, *, source: str = "<document>", actor=None, dry_run: bool = False
) -> LoadReport:
    """Check `data` (a parsed org document: from a file, or the API's JSON) and load it, all or
    nothing. Raises OrgFileError, having changed nothing, if anything is wrong."""
    errors = ErrorList()
    document = check_document(data, errors)
    if not isinstance(data, dict):
        errors.raise_if_any(source)
    # Even when the checks found problems, the load runs (and is rolled back) so that the
    # references to unknown markets, teams and sources are reported in the same answer.
    loader = _Loader(source, actor, errors, refused=_refused_keys(data, document))
    try:
        with transaction.atomic():
            _load_markets(loader, document)
            _load_sources(loader, document)
            _load_teams(loader, document)
            _load_reps(loader, document)
            _load_thresholds(loader, document)
            _load_policies(loader, document)
            errors.raise_if_any(source)
            loader.report.side_effects += loader.changes.apply().notes
            if dry_run:
                raise _DryRun
    except _DryRun:
        loader.report.dry_run = True
    except IntegrityError:  # someone saved the same market, rep, ... while the file loaded
        raise OrgFileError(
            source, ["the org changed while the file was loading: nothing was changed, load again"]
        ) from None
    return loader.report


def _load_markets(loader: _Loader, document: Document) -> None:
    entries = document.sections["markets"]
    existing = _by_key(Market.objects.all(), "code", [e.values["code"] for e in entries])
    for entry in entries:
        values = entry.values
        code = values["code"]
        market = existing.get(code)
        created = market is None
        market = market or Market(code=code)
        holidays = values["holidays"]
        changed = _assign(
            market,
            {
                "name": values.get("name") or (market.name if not created else ""),
                "timezone": values.get("timezone") or "",
                "hours": values["hours"],
                "holiday_country": holidays.get("country") or "",
                "holiday_subdivision": holidays.get("subdivision") or "",
                "extra_closed_dates": holidays.get("extra_closed", []),
                "extra_open_dates": holidays.get("extra_open", []),
            },
        )
        if loader.save(market, "markets", entry.where, changed=changed, created=created):
            loader.markets[code] = market
        else:
            loader.refused["markets"].add(code)


def _load_sources(loader: _Loader, document: Document) -> None:
    entries = document.sections["sources"]
    existing = _by_key(Source.objects.all(), "code", [e.values["code"] for e in entries])
    for entry in entries:
        code = entry.values["code"]
        source = existing.get(code)
        created = source is None
        source = source or Source(code=code)
        changed = _assign(source, {"name": entry.values.get("name") or code})
        if loader.save(source, "sources", entry.where, changed=changed, created=created):
            loader.sources[code] = source
        else:
            loader.refused["sources"].add(code)


def _load_teams(loader: _Loader, document: Document) -> None:
    entries = document.sections["teams"]
    existing = _by_key(Team.objects.all(), "slug", [e.values["slug"] for e in entries])
    for entry in entries:
        values = entry.values
        slug = values["slug"]
        market = loader.lookup(
            loader.markets, Market, "code", values["market"], entry.where, "market"
        )
        if market is None:
            loader.refused["teams"].add(slug)
            continue
        team = existing.get(slug)
        created = team is None
        team = team or Team(slug=slug)
        changed = _assign(
            team,
            {
                "name": values.get("name") or slug,
                "market_id": market.pk,
                "slack_channel_id": values.get("slack_channel") or "",
                "teams_webhook_url": values.get("teams_webhook") or "",
            },
        )
        if loader.save(team, "teams", entry.where, changed=changed, created=created):
            loader.teams[slug] = team
        else:
            loader.refused["teams"].add(slug)


def _load_reps(loader: _Loader, document: Document) -> None:
    entries = document.sections["reps"]
    existing = _by_key(
        Rep.objects.annotate(email_lower=Lower("email")).prefetch_related("time_off"),
        "email_lower",
        [e.values["email"] for e in entries],
    )
    for entry in entries:
        values, where = entry.values, entry.where
        team = loader.lookup(loader.teams, Team, "slug", values["team"], where, "team")
        if team is None:
            continue
        rep = existing.get(values["email"])
        created = rep is None
        rep = rep or Rep(email=values["email"])
        role = values.get("role", rep.role if not created else Role.REP)
        changed = _assign(
            rep,
            {
                "name": values.get("name") or "",
                "team_id": team.pk,
                "role": role,
                "slack_user_id": values.get("slack_user_id") or "",
                "capacity": values.get("capacity", rep.capacity if not created else 30),
                "hours": values.get("hours"),
                "timezone": values.get("timezone") or "",
                "active": values.get("active", True),
            },
        )
        if role == Role.MANAGER:
            other = Rep.objects.filter(team=team, role=Role.MANAGER).exclude(pk=rep.pk).first()
            if other is not None:
                loader.error(
                    where, "role", f"team {team.slug} already has a manager: {other.email}"
                )
                continue
        if not loader.save(rep, "reps", where, changed=changed, created=created):
            continue
        if "pto" in values:
            _sync_pto(loader, rep, values["pto"], created=created)


def _sync_pto(loader: _Loader, rep: Rep, wanted: list, *, created: bool) -> None:
    """The rep's time off becomes exactly the file's list (present key = full list)."""
    existing = {} if created else {(t.start, t.end): t for t in rep.time_off.all()}
    for start, end, reason in wanted:
        current = existing.pop((start, end), None)
        if current is None:
            TimeOff.objects.create(rep=rep, start=start, end=end, reason=reason)
            loader.report.count("pto", "created")
        elif current.reason != reason:
            current.reason = reason
            current.save()
            loader.report.count("pto", "updated")
        else:
            loader.report.count("pto", "unchanged")
    for item in existing.values():  # not in the file any more
        item.delete()


def _load_thresholds(loader: _Loader, document: Document) -> None:
    value = document.thresholds
    if value is None:
        return
    if value.get("breach", 100) != 100:
        loader.error("thresholds", "breach", "the breach is the end of the window: always 100")
        return
    thresholds = SlaThresholds.objects.filter(pk=1).first()
    created = thresholds is None
    thresholds = thresholds or SlaThresholds(pk=1)
    changed = _assign(
        thresholds,
        {
            "warn_percent": value.get("warn", thresholds.warn_percent),
            "reassign_percent": value.get("reassign", thresholds.reassign_percent),
        },
    )
    loader.save(thresholds, "thresholds", "thresholds", changed=changed, created=created)


def _load_policies(loader: _Loader, document: Document) -> None:
    existing = {(p.state, p.market_id, p.source_id): p for p in SlaPolicy.objects.all()}
    for entry in document.sections["sla_policies"]:
        values, where = entry.values, entry.where
        market = source = None
        if values.get("market") is not None:
            market = loader.lookup(
                loader.markets, Market, "code", values["market"], where, "market"
            )
            if market is None:
                continue
        if values.get("source") is not None:
            source = loader.lookup(
                loader.sources, Source, "code", values["source"], where, "source"
            )
            if source is None:
                continue
        state = values["state"]
        key = (state, market.pk if market else None, source.pk if source else None)
        policy = existing.get(key)
        created = policy is None
        policy = policy or SlaPolicy(state=state, market=market, source=source)
        changed = _assign(
            policy,
            {
                "window": values["window"],
                "clock": values.get("clock", Clock.BUSINESS),
                "active": values.get("active", True),
            },
        )
        loader.save(policy, "sla_policies", where, changed=changed, created=created)
