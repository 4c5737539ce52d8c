"""Loading the org file (SPEC §13): markets, calendars, sources, teams, reps with PTO, thresholds
and SLA policies, created or updated all or nothing. A bad file changes nothing and every error
names the entry and the field. Saves with consequences (a calendar, a policy switched off, a rep
made inactive) go through `escalations.org_changes`, applied once the whole file is saved.
`dry_run` does all of it and rolls back, to report what would change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from escalations.models import Clock, SlaPolicy, SlaThresholds
from escalations.org_changes import OrgChangeSet
from escalations.orgfile.schema import (
    FIELDS,
    TOP_LEVEL,
    OrgFileError,
    file_field,
    natural_key,
    read_document,
)
from escalations.windows import WindowError, parse_window
from leadops.actors import resolve_actor
from leadops.models import LeadState, Source
from teams import hours as hours_format
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


class _Loader:
    def __init__(self, source: str, actor):
        self.source = source
        self.actor = resolve_actor(actor)
        self.errors: list[str] = []
        self.report = LoadReport()
        self.markets: dict[str, Market] = {}
        self.sources: dict[str, Source] = {}
        self.teams: dict[str, Team] = {}
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
        self.errors.append(f"{where}{f', field {fieldname!r}' if fieldname else ''}: {message}")

    def entries(self, data: dict, key: str) -> list[tuple[str, dict]]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, None, "must be a list")
            return []
        out = []
        for i, entry in enumerate(value):
            name = entry.get(natural_key(key), "?") if isinstance(entry, dict) else "?"
            where = f"{key}[{i}] ({name})"
            if not isinstance(entry, dict):
                self.error(where, None, "must be a mapping")
                continue
            unknown = set(entry) - FIELDS[key]
            if unknown:
                self.error(
                    where,
                    sorted(unknown)[0],
                    f"unknown field (known: {', '.join(sorted(FIELDS[key]))})",
                )
                continue
            out.append((where, entry))
        return out

    def save(
        self, obj, what: str, where: str, *, exclude=None, changed: bool, created: bool
    ) -> bool:
        if not (created or changed):
            self.report.count(what, "unchanged")
            return True
        try:
            obj.full_clean(exclude=exclude)
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


def _assign(obj, values: dict) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed = True
    return changed


class _DryRun(Exception):
    """Raised to roll a dry run back once its report is complete."""


def load_document(
    data: dict, *, source: str = "<document>", actor=None, dry_run: bool = False
) -> LoadReport:
    loader = _Loader(source, actor)
    unknown = set(data) - set(TOP_LEVEL)
    if unknown:
        raise OrgFileError(
            source,
            [
                f"unknown top-level key {k!r} (known: {', '.join(TOP_LEVEL)})"
                for k in sorted(unknown)
            ],
        )
    try:
        with transaction.atomic():
            _load_markets(loader, data)
            _load_sources(loader, data)
            _load_teams(loader, data)
            _load_reps(loader, data)
            _load_thresholds(loader, data)
            _load_policies(loader, data)
            if loader.errors:
                raise OrgFileError(source, loader.errors)
            loader.report.side_effects += loader.changes.apply().notes
            if dry_run:
                raise _DryRun
    except _DryRun:
        loader.report.dry_run = True
    return loader.report


def _load_markets(loader: _Loader, data: dict) -> None:
    for where, entry in loader.entries(data, "markets"):
        code = str(entry.get("code") or "").strip()
        if not code:
            loader.error(where, "code", "required")
            continue
        market = Market.objects.filter(code=code).first()
        created = market is None
        market = market or Market(code=code)
        holidays = entry.get("holidays") or {}
        if not isinstance(holidays, dict):
            loader.error(
                where,
                "holidays",
                "must be a mapping with country, subdivision, extra_closed, extra_open",
            )
            continue
        unknown = set(holidays) - FIELDS["holidays"]
        if unknown:
            loader.error(where, f"holidays.{sorted(unknown)[0]}", "unknown field")
            continue
        try:
            hours = hours_format.normalize_week(entry.get("hours"))
        except hours_format.HoursError as exc:
            loader.error(where, "hours", str(exc))
            continue
        try:
            closed = sorted(
                d.isoformat() for d in hours_format.parse_closed_dates(holidays.get("extra_closed"))
            )
        except hours_format.HoursError as exc:
            loader.error(where, "holidays.extra_closed", str(exc))
            continue
        try:
            opened = hours_format.serialize_open_dates(
                hours_format.parse_open_dates(holidays.get("extra_open"))
            )
        except hours_format.HoursError as exc:
            loader.error(where, "holidays.extra_open", str(exc))
            continue
        changed = _assign(
            market,
            {
                "name": str(entry.get("name") or (market.name if not created else "")).strip(),
                "timezone": str(entry.get("timezone") or ""),
                "hours": hours,
                "holiday_country": str(holidays.get("country") or ""),
                "holiday_subdivision": str(holidays.get("subdivision") or ""),
                "extra_closed_dates": closed,
                "extra_open_dates": opened,
            },
        )
        if loader.save(market, "markets", where, changed=changed, created=created):
            loader.markets[code] = market


def _load_sources(loader: _Loader, data: dict) -> None:
    for where, entry in loader.entries(data, "sources"):
        code = str(entry.get("code") or "").strip()
        if not code:
            loader.error(where, "code", "required")
            continue
        source = Source.objects.filter(code=code).first()
        created = source is None
        source = source or Source(code=code)
        changed = _assign(source, {"name": str(entry.get("name") or code).strip()})
        if loader.save(source, "sources", where, changed=changed, created=created):
            loader.sources[code] = source


def _market(loader: _Loader, code, where: str, fieldname: str = "market") -> Market | None:
    if code in loader.markets:
        return loader.markets[code]
    market = Market.objects.filter(code=code).first()
    if market is None:
        loader.error(where, fieldname, f"no market {code!r} in the file or the database")
    return market


def _load_teams(loader: _Loader, data: dict) -> None:
    for where, entry in loader.entries(data, "teams"):
        slug = str(entry.get("slug") or "").strip()
        if not slug:
            loader.error(where, "slug", "required")
            continue
        market = _market(loader, entry.get("market"), where)
        if market is None:
            continue
        team = Team.objects.filter(slug=slug).first()
        created = team is None
        team = team or Team(slug=slug)
        changed = _assign(
            team,
            {
                "name": str(entry.get("name") or slug).strip(),
                "market_id": market.pk,
                "slack_channel_id": str(entry.get("slack_channel") or ""),
                "teams_webhook_url": str(entry.get("teams_webhook") or ""),
            },
        )
        if loader.save(team, "teams", where, changed=changed, created=created):
            loader.teams[slug] = team


def _team(loader: _Loader, slug, where: str) -> Team | None:
    if slug in loader.teams:
        return loader.teams[slug]
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        loader.error(where, "team", f"no team {slug!r} in the file or the database")
    return team


def _aware(value, where, fieldname, loader) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = parse_datetime(str(value)) if value is not None else None
        except ValueError:  # well formed, but no such day or hour (2026-02-30)
            parsed = None
    if parsed is None:
        loader.error(
            where, fieldname, f"{value!r} is not a date-time like 2026-12-01T00:00:00+05:30"
        )
        return None
    if timezone.is_naive(parsed):
        loader.error(where, fieldname, f"{value!r} needs a UTC offset, like +05:30")
        return None
    return parsed


def _load_reps(loader: _Loader, data: dict) -> None:
    for where, entry in loader.entries(data, "reps"):
        email = str(entry.get("email") or "").strip().lower()
        if not email:
            loader.error(where, "email", "required")
            continue
        team = _team(loader, entry.get("team"), where)
        if team is None:
            continue
        rep = Rep.objects.filter(email__iexact=email).first()
        created = rep is None
        rep = rep or Rep(email=email)
        role = entry.get("role", rep.role if not created else Role.REP)
        if role not in Role.values:
            loader.error(where, "role", f"{role!r} is not one of {', '.join(Role.values)}")
            continue
        capacity = entry.get("capacity", rep.capacity if not created else 30)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            loader.error(where, "capacity", f"{capacity!r} must be a whole number ≥ 0")
            continue
        active = entry.get("active", True)
        if not isinstance(active, bool):
            loader.error(where, "active", f"{active!r} must be true or false")
            continue
        hours = entry.get("hours")
        if hours is not None:
            try:
                hours = hours_format.normalize_week(hours)
            except hours_format.HoursError as exc:
                loader.error(where, "hours", str(exc))
                continue
        values = {
            "name": str(entry.get("name") or "").strip(),
            "team_id": team.pk,
            "role": role,
            "slack_user_id": str(entry.get("slack_user_id") or ""),
            "capacity": capacity,
            "hours": hours,
            "timezone": str(entry.get("timezone") or ""),
            "active": active,
        }
        changed = _assign(rep, values)
        if role == Role.MANAGER:
            other = Rep.objects.filter(team=team, role=Role.MANAGER).exclude(pk=rep.pk).first()
            if other is not None:
                loader.error(
                    where, "role", f"team {team.slug} already has a manager: {other.email}"
                )
                continue
        if not loader.save(rep, "reps", where, changed=changed, created=created):
            continue
        if "pto" in entry:
            _sync_pto(loader, rep, entry["pto"], where)


def _sync_pto(loader: _Loader, rep: Rep, items, where: str) -> None:
    """The rep's time off becomes exactly the file's list (present key = full list)."""
    if items is None:
        items = []
    if not isinstance(items, list):
        loader.error(where, "pto", "must be a list of {start, end, reason}")
        return
    wanted = []
    for i, item in enumerate(items):
        pwhere = f"{where} pto[{i}]"
        if not isinstance(item, dict) or set(item) - FIELDS["pto"]:
            loader.error(pwhere, None, "must be a mapping with start, end and optional reason")
            continue
        start = _aware(item.get("start"), pwhere, "start", loader)
        end = _aware(item.get("end"), pwhere, "end", loader)
        if start is None or end is None:
            continue
        if end <= start:
            loader.error(pwhere, "end", "must be after start")
            continue
        wanted.append((start, end, str(item.get("reason") or "")))
    existing = {(t.start, t.end): t for t in rep.time_off.all()}
    keep = set()
    for start, end, reason in wanted:
        current = existing.get((start, end))
        if current is None:
            TimeOff.objects.create(rep=rep, start=start, end=end, reason=reason)
            loader.report.count("pto", "created")
        else:
            keep.add((start, end))
            if current.reason != reason:
                current.reason = reason
                current.save()
                loader.report.count("pto", "updated")
            else:
                loader.report.count("pto", "unchanged")
    for key, item in existing.items():
        if key not in keep and key not in {(s, e) for s, e, _ in wanted}:
            item.delete()


def _load_thresholds(loader: _Loader, data: dict) -> None:
    value = data.get("thresholds")
    if value is None:
        return
    if not isinstance(value, dict):
        loader.error("thresholds", None, "must be a mapping {warn, breach, reassign}")
        return
    unknown = set(value) - FIELDS["thresholds"]
    if unknown:
        loader.error("thresholds", sorted(unknown)[0], "unknown field")
        return
    for key in ("warn", "breach", "reassign"):
        if key in value and (isinstance(value[key], bool) or not isinstance(value[key], int)):
            loader.error("thresholds", key, f"{value[key]!r} must be a whole percentage")
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


def _load_policies(loader: _Loader, data: dict) -> None:
    seen = {}
    for where, entry in loader.entries(data, "sla_policies"):
        state = entry.get("state")
        if state not in LeadState.values:
            loader.error(where, "state", f"{state!r} is not one of {', '.join(LeadState.values)}")
            continue
        market = source = None
        if entry.get("market") is not None:
            market = _market(loader, entry["market"], where)
            if market is None:
                continue
        if entry.get("source") is not None:
            source = (
                loader.sources.get(entry["source"])
                or Source.objects.filter(code=entry["source"]).first()
            )
            if source is None:
                loader.error(
                    where, "source", f"no source {entry['source']!r} in the file or the database"
                )
                continue
        try:
            window = parse_window(entry.get("window")).text
        except WindowError as exc:
            loader.error(where, "window", str(exc))
            continue
        clock = entry.get("clock", Clock.BUSINESS)
        if clock not in Clock.values:
            loader.error(where, "clock", f"{clock!r} is not one of {', '.join(Clock.values)}")
            continue
        active = entry.get("active", True)
        if not isinstance(active, bool):
            loader.error(where, "active", f"{active!r} must be true or false")
            continue
        key = (state, market.pk if market else None, source.pk if source else None)
        if key in seen:
            loader.error(where, None, f"the same (state, market, source) as {seen[key]}")
            continue
        seen[key] = where
        policy = SlaPolicy.objects.filter(state=state, market=market, source=source).first()
        created = policy is None
        policy = policy or SlaPolicy(state=state, market=market, source=source)
        changed = _assign(policy, {"window": window, "clock": clock, "active": active})
        loader.save(policy, "sla_policies", where, changed=changed, created=created)
