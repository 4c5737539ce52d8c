"""What-if (SPEC §11): replay a period's timer episodes under a draft policy set, before saving it.

An episode is a lead's stay in one state, across auto-reassignments and reverts (the timers that
share `episode`). The replay keeps what happened — the start, the holds (pauses) and the instant
the progress came, or the end without progress — and asks what the draft's windows and
thresholds would have fired on the same business calendars: warnings, breaches and reassign
stages (after a predicted reassignment the new owner gets a fresh window, up to
`REASSIGN_LIMIT_PER_STATE`). Progress instants are kept as they happened: a tighter window might
have made people faster, which no replay can know. A reassign stage is counted whether or not a
candidate would have been found.

Loading is a few queries (timers, progress instants, pauses); the replay itself is a Python loop
over episodes with bisect-based calendar arithmetic.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from audit.calibration import Period
from audit.models import AuditEvent, AuditKind
from escalations import planning
from escalations.models import Clock, Outcome, SlaPolicy, SlaTimer, Stage
from escalations.orgfile.schema import ErrorList, OrgFileError, check_document
from escalations.policies import best_match, current_thresholds
from escalations.windows import parse_window
from leadops.models import Lead, Source
from teams.models import Market

NOTE = (
    "Progress instants are kept as they happened; a stricter window cannot show whether people "
    "would have been faster. Reassign stages are counted whether or not a candidate would have "
    "been found."
)
STAGE_RANK = {Stage.PENDING: 0, Stage.WARNED: 1, Stage.BREACHED: 2, Stage.REASSIGNED: 3}
RANK_LABEL = {0: "on time", 1: "warned", 2: "breached", 3: "reassigned"}


# --- the draft ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftPolicy:
    state: str
    market_id: int | None
    source_id: int | None
    window: str
    clock: str = Clock.BUSINESS

    @property
    def specificity(self) -> int:
        return (2 if self.market_id else 0) + (1 if self.source_id else 0)


@dataclass(frozen=True)
class Draft:
    """A whole policy set (only the active ones) and the thresholds to replay it with."""

    policies: tuple[DraftPolicy, ...]
    thresholds: dict  # {"warn": 80, "breach": 100, "reassign": 150}
    label: str = "draft"


def _active_policies() -> list[DraftPolicy]:
    return [
        DraftPolicy(p.state, p.market_id, p.source_id, p.window, p.clock)
        for p in SlaPolicy.objects.filter(active=True)
    ]


def _thresholds(overrides: dict | None = None) -> dict:
    current = current_thresholds().as_dict()
    merged = {k: current[k] for k in ("warn", "breach", "reassign")}
    merged.update({k: v for k, v in (overrides or {}).items() if k in merged})
    return merged


def draft_with(policy: SlaPolicy, *, thresholds: dict | None = None) -> Draft:
    """The active set with one (unsaved) policy edit applied: it replaces the row it edits, or
    the row of the same (state, market, source), or is added; inactive, it is left out."""
    key = (policy.state, policy.market_id, policy.source_id)
    others = [
        DraftPolicy(p.state, p.market_id, p.source_id, p.window, p.clock)
        for p in SlaPolicy.objects.filter(active=True).exclude(pk=policy.pk or 0)
        if (p.state, p.market_id, p.source_id) != key
    ]
    if policy.active:
        others.append(DraftPolicy(*key, policy.window, policy.clock))
    return Draft(tuple(others), _thresholds(thresholds), label="the unsaved edit")


def draft_from_document(data: dict, *, source: str = "<draft>") -> Draft:
    """A draft from an org document's `sla_policies` (and `thresholds`, if given): it replaces
    the active policy set for the replay. Other sections are not read."""
    errors = ErrorList()
    wanted = {k: data[k] for k in ("sla_policies", "thresholds") if k in data}
    if "sla_policies" not in wanted:
        raise OrgFileError(source, ["a draft needs an sla_policies section"])
    document = check_document(wanted, errors)
    markets = dict(Market.objects.values_list("code", "pk"))
    sources = dict(Source.objects.values_list("code", "pk"))
    policies = []
    for entry in document.sections["sla_policies"]:
        values = entry.values
        ids = []
        for name, known in (("market", markets), ("source", sources)):
            code = values.get(name)
            if code is not None and code not in known:
                errors.add(entry.where, name, f"no {name} {code!r}")
            ids.append(known.get(code) if code is not None else None)
        if values.get("active", True):
            policies.append(
                DraftPolicy(
                    values["state"],
                    ids[0],
                    ids[1],
                    values["window"],
                    values.get("clock", Clock.BUSINESS),
                )
            )
    errors.raise_if_any(source)
    return Draft(tuple(policies), _thresholds(document.thresholds), label=source)


# --- the episodes ---------------------------------------------------------------------------------


@dataclass
class Episode:
    lead_id: int
    market_id: int
    source_id: int
    state: str
    start: datetime
    end: datetime | None = None  # progress or end; None: still running
    progressed: bool = False
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    warnings: int = 0
    breaches: int = 0
    reassign_stages: int = 0
    worst: int = 0


def load_episodes(period: Period, *, market: str | None = None, team_ids=None) -> list[Episode]:
    """The episodes whose first timer started in the period, with what actually fired."""
    timers = SlaTimer.objects.filter(
        started_at__gte=period.start, started_at__lt=period.end
    ).order_by("started_at", "pk")
    if market:
        timers = timers.filter(lead__market__code=market)
    if team_ids is not None:
        timers = timers.filter(lead__team_id__in=sorted(team_ids))
    rows = timers.values_list(
        "pk",
        "episode",
        "lead_id",
        "lead__market_id",
        "lead__source_id",
        "state",
        "started_at",
        "completed_at",
        "outcome",
        "stage",
    )
    episodes: dict = {}
    by_timer: dict[int, Episode] = {}
    met: list[int] = []
    for pk, key, lead_id, market_id, source_id, state, started, completed, outcome, stage in rows:
        episode = episodes.get(key)
        if episode is None:
            episode = episodes[key] = Episode(lead_id, market_id, source_id, state, started)
        by_timer[pk] = episode
        rank = STAGE_RANK[stage]
        episode.warnings += rank >= 1
        episode.breaches += rank >= 2
        episode.reassign_stages += rank >= 3
        episode.worst = max(episode.worst, rank)
        # The latest timer decides how the episode ended (timers come in start order).
        episode.end, episode.progressed = completed, outcome in (Outcome.MET, Outcome.MET_LATE)
        if episode.progressed:
            met.append(pk)
    events = AuditEvent.objects.filter(
        timer_started_at__gte=period.start,
        timer_started_at__lt=period.end,
        kind__in=(AuditKind.SLA_MET, AuditKind.SLA_PAUSED, AuditKind.SLA_RESUMED),
    ).order_by("occurred_at", "pk")
    for timer_id, kind, at, details in events.values_list(
        "timer_id", "kind", "occurred_at", "details"
    ):
        episode = by_timer.get(timer_id)
        if episode is None:
            continue
        if kind == AuditKind.SLA_PAUSED:
            episode.pauses.append((at, None))
        elif kind == AuditKind.SLA_RESUMED and episode.pauses and episode.pauses[-1][1] is None:
            episode.pauses[-1] = (episode.pauses[-1][0], at)
        elif (
            kind == AuditKind.SLA_MET and episode.progressed and (details or {}).get("progress_at")
        ):
            # The progress instant itself (an activity may be recorded after it happened).
            episode.end = min(episode.end, datetime.fromisoformat(details["progress_at"]))
    return list(episodes.values())


# --- the replay -----------------------------------------------------------------------------------


class _Clock:
    """Business time of one episode on one calendar, holds excluded."""

    def __init__(self, calendar, pauses, until: datetime):
        self.calendar = calendar
        self.pauses = [(a, b or until) for a, b in pauses if (b or until) > a]

    def used(self, start: datetime, at: datetime) -> timedelta:
        total = self.calendar.elapsed(start, at) if at > start else timedelta(0)
        for a, b in self.pauses:
            lo, hi = max(a, start), min(b, at)
            if hi > lo:
                total -= self.calendar.elapsed(lo, hi)
        return total

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` business time has run from `start`."""
        at = start
        for a, b in self.pauses:
            if b <= at:
                continue
            end = self.calendar.add(at, amount)
            if end <= a:
                return end
            if a > at:
                amount -= self.calendar.elapsed(at, a)
            at = max(at, b)
        return self.calendar.add(at, amount)


@dataclass
class Predicted:
    warnings: int = 0
    breaches: int = 0
    reassign_stages: int = 0
    worst: int = 0


@dataclass(frozen=True)
class _Rule:
    """A draft policy ready to replay: its calendar, its window, and the stage offsets when the
    window is a fixed duration (business days depend on the start)."""

    calendar: object
    window: object
    thresholds: dict
    offsets: dict | None


def _rule(policy: DraftPolicy, market, thresholds: dict) -> _Rule:
    calendar = planning.calendar_for(Lead(market=market), policy.clock)
    window = parse_window(policy.window)
    offsets = (
        planning.stage_offsets(window.duration, thresholds)
        if window.business_days is None
        else None
    )
    return _Rule(calendar, window, thresholds, offsets)


def replay_episode(episode: Episode, rule: _Rule | None, *, now: datetime, limit: int) -> Predicted:
    """What the draft would have fired in this episode, progress kept where it was."""
    out = Predicted()
    if rule is None:
        return out
    until = episode.end or now
    clock = _Clock(rule.calendar, episode.pauses, until)
    start = episode.start
    while True:
        offsets = rule.offsets or planning.stage_offsets(
            planning.window_business_time(start, rule.window, rule.calendar), rule.thresholds
        )
        used = clock.used(start, until)
        # Progress at exactly a stage's instant is in time (a timer is met late only past its
        # window, as `complete_timer` judges it).
        reached = (
            (used > offsets["warn_at"])
            + (used > offsets["due_at"])
            + (used > offsets["reassign_at"])
        )
        out.warnings += reached >= 1
        out.breaches += reached >= 2
        out.worst = max(out.worst, reached)
        if reached < 3:
            return out
        out.reassign_stages += 1
        if out.reassign_stages > limit:
            return out
        start = clock.add(start, offsets["reassign_at"])


@dataclass
class WhatIf:
    period: Period
    draft: Draft
    rows: list[dict]
    changed: list[dict]
    changed_total: int
    episodes: int
    note: str = NOTE

    def as_dict(self) -> dict:
        return {
            "period": self.period.as_dict(),
            "draft": self.draft.label,
            "thresholds": self.draft.thresholds,
            "episodes": self.episodes,
            "rows": self.rows,
            "changed_leads": self.changed,
            "changed_total": self.changed_total,
            "note": self.note,
        }


def replay(
    period: Period,
    draft: Draft,
    *,
    now: datetime,
    market: str | None = None,
    team_ids=None,
    changed_limit: int = 200,
) -> WhatIf:
    """Predicted beside actual warnings, breaches and reassign stages per (market, source,
    state), and the leads whose outcome would change."""
    episodes = load_episodes(period, market=market, team_ids=team_ids)
    markets = {m.pk: m for m in Market.objects.all()}
    market_codes = {pk: m.code for pk, m in markets.items()}
    source_codes = dict(Source.objects.values_list("pk", "code"))
    limit = settings.REASSIGN_LIMIT_PER_STATE
    rules: dict = {}
    totals: dict = defaultdict(lambda: defaultdict(int))
    changed = []
    for episode in episodes:
        key = (episode.state, episode.market_id, episode.source_id)
        if key not in rules:
            policy = best_match(draft.policies, state=key[0], market_id=key[1], source_id=key[2])
            rules[key] = (
                None if policy is None else _rule(policy, markets[key[1]], draft.thresholds)
            )
        predicted = replay_episode(episode, rules[key], now=now, limit=limit)
        row = totals[(market_codes[episode.market_id], source_codes[episode.source_id], key[0])]
        row["episodes"] += 1
        row["warnings"] += episode.warnings
        row["breaches"] += episode.breaches
        row["reassign_stages"] += episode.reassign_stages
        row["predicted_warnings"] += predicted.warnings
        row["predicted_breaches"] += predicted.breaches
        row["predicted_reassign_stages"] += predicted.reassign_stages
        if predicted.worst != episode.worst:
            changed.append((episode, predicted))
    rows = [
        {"market": m, "source": s, "state": st, **dict(figures)}
        for (m, s, st), figures in sorted(totals.items())
    ]
    labels = dict(
        Lead.objects.filter(pk__in=[e.lead_id for e, _ in changed[:changed_limit]]).values_list(
            "pk", "name"
        )
    )
    changed_rows = [
        {
            "lead_id": e.lead_id,
            "lead": labels.get(e.lead_id, ""),
            "market": market_codes[e.market_id],
            "source": source_codes[e.source_id],
            "state": e.state,
            "started_at": e.start.isoformat(),
            "actual": RANK_LABEL[e.worst],
            "predicted": RANK_LABEL[p.worst],
        }
        for e, p in changed[:changed_limit]
    ]
    return WhatIf(period, draft, rows, changed_rows, len(changed), len(episodes))
