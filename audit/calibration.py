"""Calibration (SPEC §11): what a quarter of escalations says about the windows, the routing and
the messages, read from the audit log.

Everything here is a reading of the log, aggregated in SQL (no Python loop over timers or
events). The log already keeps each fact as it was when it happened: the business time a timer
had used when the progress came (`elapsed` of `sla_met`, measured on the timer's own clock and
calendar), the policy version at a breach, the team at a reassignment. An event belongs to the
period its timer started in (`timer_started_at`), so a timer is counted once, in one quarter.

- Breach rate = timers that reached the breach stage ÷ timers that ended or reached it (a running
  timer not yet breached counts neither way).
- Percentiles are nearest-rank: p50 of n values is the value of rank ceil(n/2) in ascending order
  (so with ties and few points the answer is always one of the values).
- A stage message (warning, breach) is *acted on* when progress ended its timer before the next
  stage fired, *ignored* when the next stage fired first; other outcomes (the timer cancelled,
  still running) are neither. Other messages count as sent or failed only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from audit.models import AuditEvent, AuditKind
from audit.timer_summary import MESSAGES, TIMERS
from leadops.models import OPEN_STATES, Lead, LeadState, Source
from teams.models import Market, Rep, Team

K = AuditKind
STAGE_MESSAGE_KINDS = ("warning", "breach")
_STATE_ORDER = list(LeadState.values)


class PeriodError(ValueError):
    pass


# --- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC."""

    start: datetime
    end: datetime
    label: str

    def as_dict(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "label": self.label}


def _quarter_start(year: int, quarter: int) -> datetime:
    return datetime(year, 3 * (quarter - 1) + 1, 1, tzinfo=UTC)


def quarter(text: str) -> Period:
    """`2026Q3` → 1 July 2026 00:00 UTC up to 1 October."""
    text = (text or "").strip().upper()
    try:
        year_text, q_text = text.split("Q")
        year, q = int(year_text), int(q_text)
    except ValueError:
        raise PeriodError(f"{text!r} is not a quarter: write it like 2026Q3") from None
    if not 1 <= q <= 4 or not 1970 <= year <= 9000:
        raise PeriodError(f"{text!r} is not a quarter: write it like 2026Q3")
    end = _quarter_start(year + 1, 1) if q == 4 else _quarter_start(year, q + 1)
    return Period(_quarter_start(year, q), end, f"{year}Q{q}")


def last_full_quarter(now: datetime) -> Period:
    q = (now.astimezone(UTC).month - 1) // 3 + 1
    year = now.astimezone(UTC).year
    year, q = (year - 1, 4) if q == 1 else (year, q - 1)
    return quarter(f"{year}Q{q}")


def recent_quarters(now: datetime, count: int = 8) -> list[str]:
    """The current quarter (so far) and the `count` full quarters before it, newest first (for
    period pickers)."""
    period = last_full_quarter(now)
    current = last_full_quarter(period.end + timedelta(days=100))
    out = [current.label]
    for _ in range(count):
        out.append(period.label)
        period = last_full_quarter(period.start)
    return out


def date_range(start: date, end: date) -> Period:
    """From the start date to the end date, both included (UTC days)."""
    if end < start:
        raise PeriodError("the period ends before it starts")
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    stop = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    return Period(begin, stop, f"{start.isoformat()} – {end.isoformat()}")


def parse_period(
    *, start: str = "", end: str = "", quarter_text: str = "", now: datetime
) -> Period:
    """The period a user asked for: a quarter, a date range, or the last full quarter."""
    if quarter_text:
        if start or end:
            raise PeriodError("give either a quarter or a date range, not both")
        return quarter(quarter_text)
    if start or end:
        if not (start and end):
            raise PeriodError("a date range needs both a start and an end date")
        try:
            return date_range(date.fromisoformat(start), date.fromisoformat(end))
        except ValueError as exc:
            raise PeriodError(f"bad date: {exc}") from None
    return last_full_quarter(now)


# --- percentiles in SQL -------------------------------------------------------------------------


def nearest_rank(n: int, percent: int) -> int:
    """The rank (1-based, ascending) holding the `percent`-th percentile of n values."""
    return max(1, math.ceil(n * percent / 100))


def ranked_percentiles(sql: str, params, *, keys: int, points=(50, 90)) -> dict:
    """Nearest-rank percentiles over the rows of `sql`, whose columns are the group `c0` ..
    `c{keys-1}` and the value `p_value`: `{group: {percent: value}}`.

    PostgreSQL's `percentile_disc(f)` is the value at rank ceil(n × f): the nearest rank (the
    doubles 0.5 and 0.9 times any n round to the same ceiling as the exact product). Elsewhere
    each row is ranked in its group by a window function and only the rows at the wanted ranks
    come back."""
    groups = ", ".join(f"c{i}" for i in range(keys))
    out: dict[tuple, dict[int, object]] = {}
    if connection.vendor == "postgresql":
        fractions = ", ".join(f"{int(p) / 100!r}" for p in points)
        for row in _fetch(
            f"""SELECT {groups}, percentile_disc(ARRAY[{fractions}]::float8[])
                    WITHIN GROUP (ORDER BY p_value)
                FROM ({sql}) s GROUP BY {groups}""",
            params,
        ):
            out[tuple(row[:keys])] = dict(zip(points, row[keys], strict=True))
        return out
    wanted = " OR ".join(
        f"(p_rank * 100 >= p_count * {int(p)} AND (p_rank - 1) * 100 < p_count * {int(p)})"
        for p in points
    )
    for row in _fetch(
        f"""SELECT {groups}, p_value, p_rank, p_count FROM (
            SELECT s.*, ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY p_value) AS p_rank,
                   COUNT(*) OVER (PARTITION BY {groups}) AS p_count
            FROM ({sql}) s
        ) ranked WHERE {wanted}""",
        params,
    ):
        group, v, rank, count = tuple(row[:keys]), row[keys], row[-2], row[-1]
        for p in points:
            if rank == nearest_rank(count, p):
                out.setdefault(group, {})[p] = v
    return out


def _duration(value):
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(microseconds=int(value))  # SQLite keeps durations as microseconds


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Finding:
    code: str  # breach_rate | reassign_rate | ignored_messages
    text: str
    figure: str
    rows: dict  # what to list to see the rows behind it (the interface makes a link of it)


@dataclass
class Report:
    period: Period
    market: str | None
    generated_at: datetime
    thresholds: dict
    by_source: list[dict] = field(default_factory=list)  # per (market, source), all states
    by_state: list[dict] = field(default_factory=list)  # per (market, source, state)
    progress_by_state: list[dict] = field(default_factory=list)  # p50/p90 per state, overall
    teams: list[dict] = field(default_factory=list)
    reps: list[dict] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)
    policies: list[dict] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict:
        def clean(rows):
            return [{k: _jsonable(v) for k, v in row.items()} for row in rows]

        return {
            "period": self.period.as_dict(),
            "market": self.market,
            "generated_at": self.generated_at.isoformat(),
            "thresholds": self.thresholds,
            "findings": [asdict(f) for f in self.findings],
            "by_source": clean(self.by_source),
            "by_state": clean(self.by_state),
            "progress_by_state": clean(self.progress_by_state),
            "teams": clean(self.teams),
            "reps": clean(self.reps),
            "notifications": clean(self.notifications),
            "policies": clean(self.policies),
        }


def _jsonable(value):
    if isinstance(value, timedelta):
        return round(value.total_seconds())
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def thresholds_in_force() -> dict:
    return {
        "min_timers": settings.CALIBRATION_MIN_TIMERS,
        "breach_rate_percent": settings.CALIBRATION_BREACH_RATE_PERCENT,
        "reassign_rate_percent": settings.CALIBRATION_REASSIGN_RATE_PERCENT,
        "ignored_rate_percent": settings.CALIBRATION_IGNORED_RATE_PERCENT,
        "min_messages": settings.CALIBRATION_MIN_MESSAGES,
    }


def build_report(
    period: Period,
    *,
    now: datetime,
    market: str | None = None,
    team_ids=None,
) -> Report:
    """The calibration report for a period; `market` (code) and `team_ids` (None = every team;
    a team lead's teams otherwise) narrow it. Read from the per-timer and per-message rows the
    database keeps from the log (audit/timer_summary.py): every table is a GROUP BY over them."""
    report = Report(
        period=period, market=market, generated_at=now, thresholds=thresholds_in_force()
    )
    timers = _scope(period, market=market, team_ids=team_ids, alias="t")
    with transaction.atomic():  # one snapshot of the log for every table
        report.by_state = _timer_rows(timers, with_state=True)
        report.by_source = _timer_rows(timers, with_state=False)
        report.progress_by_state = _progress_by_state(timers)
        report.teams = _team_rows(timers, market=market, team_ids=team_ids)
        report.notifications = _notification_rows(
            _scope(period, market=market, team_ids=team_ids, alias="m"), timers
        )
        report.policies = _policy_rows(timers)
    report.reps = _rep_rows(market=market, team_ids=team_ids)
    report.findings = findings(report)
    return report


@dataclass(frozen=True)
class _Scope:
    """A WHERE condition (and its parameters) on the rows of one derived table, `alias`."""

    sql: str
    params: tuple


def _scope(period: Period, *, market, team_ids, alias: str) -> _Scope:
    """The rows of timers that started in the period, of the market's leads and of the teams."""
    adapt = connection.ops.adapt_datetimefield_value
    conditions = [f"{alias}.timer_started_at >= %s", f"{alias}.timer_started_at < %s"]
    params = [adapt(period.start), adapt(period.end)]
    if market:
        markets = Market._meta.db_table
        conditions.append(f"{alias}.market_id IN (SELECT id FROM {markets} WHERE code = %s)")
        params.append(market)
    if team_ids is not None:
        ids = sorted(team_ids)
        conditions.append(
            f"{alias}.team_id IN ({', '.join(['%s'] * len(ids))})" if ids else "1 = 0"
        )
        params += ids
    return _Scope(" AND ".join(conditions), tuple(params))


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _names():
    markets = {m.pk: m for m in Market.objects.all()}
    sources = {s.pk: s for s in Source.objects.all()}
    return markets, sources


def _timer_rows(timers: _Scope, *, with_state: bool) -> list[dict]:
    groups = "t.market_id, t.source_id" + (", t.state" if with_state else "")
    figures = _fetch(
        f"""SELECT {groups}, COUNT(DISTINCT t.lead_id), COUNT(*),
                   SUM(CASE WHEN t.n_settled > 0 THEN 1 ELSE 0 END), SUM(t.n_met),
                   SUM(t.n_met_late), SUM(CASE WHEN t.n_breach > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN t.n_cancelled > 0 THEN 1 ELSE 0 END)
            FROM {TIMERS} t WHERE {timers.sql} AND t.n_timer > 0 GROUP BY {groups}""",
        timers.params,
    )
    keys = 3 if with_state else 2
    progress = ranked_percentiles(
        f"SELECT {', '.join(f'{g} AS c{i}' for i, g in enumerate(groups.split(', ')))}, "
        f"t.progress_elapsed AS p_value FROM {TIMERS} t "
        f"WHERE {timers.sql} AND t.progress_elapsed IS NOT NULL",
        timers.params,
        keys=keys,
    )
    markets, sources = _names()
    rows = []
    for row in figures:
        group = tuple(row[:keys])
        market, source = markets.get(row[0]), sources.get(row[1])
        leads, timers, settled, met, met_late, breached, cancelled = (
            int(v or 0) for v in row[keys:]
        )
        figures_p = progress.get(group, {})
        rows.append(
            {
                "market": market.code if market else "",
                "source": source.code if source else "",
                "state": row[2] if with_state else "",
                "market_name": market.name if market else "",
                "source_name": source.name if source else "",
                "leads": leads,
                "timers": timers,
                "settled": settled,
                "met": met,
                "met_late": met_late,
                "breached": breached,
                "cancelled": cancelled,
                "breach_rate": _rate(breached, settled),
                "p50_to_progress": _duration(figures_p.get(50)),
                "p90_to_progress": _duration(figures_p.get(90)),
            }
        )
    order = {state: i for i, state in enumerate(_STATE_ORDER)}
    rows.sort(key=lambda r: (r["market"], r["source"], order.get(r["state"], -1)))
    return rows


def _progress_by_state(timers: _Scope) -> list[dict]:
    progressed = f"FROM {TIMERS} t WHERE {timers.sql} AND t.progress_elapsed IS NOT NULL"
    counts = dict(_fetch(f"SELECT t.state, COUNT(*) {progressed} GROUP BY t.state", timers.params))
    figures = ranked_percentiles(
        f"SELECT t.state AS c0, t.progress_elapsed AS p_value {progressed}",
        timers.params,
        keys=1,
    )
    return [
        {
            "state": state,
            "progressed": counts[state],
            "p50_to_progress": _duration(figures.get((state,), {}).get(50)),
            "p90_to_progress": _duration(figures.get((state,), {}).get(90)),
        }
        for state in sorted(counts, key=_STATE_ORDER.index)
    ]


def _team_rows(timers: _Scope, *, market, team_ids) -> list[dict]:
    teams = Team.objects.select_related("market").order_by("market__code", "slug")
    if market:
        teams = teams.filter(market__code=market)
    if team_ids is not None:
        teams = teams.filter(pk__in=sorted(team_ids))
    figures = {
        row[0]: row[1:]
        for row in _fetch(
            f"""SELECT t.team_id, SUM(CASE WHEN t.n_timer > 0 THEN 1 ELSE 0 END), SUM(t.n_auto),
                       SUM(t.n_revert), SUM(t.n_no_candidate), SUM(t.n_limit)
                FROM {TIMERS} t WHERE {timers.sql} AND t.team_id IS NOT NULL
                GROUP BY t.team_id""",
            timers.params,
        )
    }
    rows = []
    for team in teams:
        timers, auto, reverts, no_candidate, limit = (
            int(v or 0) for v in figures.get(team.pk, (0, 0, 0, 0, 0))
        )
        rows.append(
            {
                "team": team.slug,
                "team_name": team.name,
                "team_id": team.pk,
                "market": team.market.code,
                "timers": timers,
                "auto_reassignments": auto,
                "reassignment_rate": _rate(auto, timers),
                "reverts": reverts,
                "no_candidate": no_candidate,
                "limit_reached": limit,
            }
        )
    return rows


def _rep_rows(*, market, team_ids) -> list[dict]:
    """Load now (open leads owned) against capacity, per active rep."""
    reps = Rep.objects.filter(active=True).select_related("team")
    if market:
        reps = reps.filter(team__market__code=market)
    if team_ids is not None:
        reps = reps.filter(team_id__in=sorted(team_ids))
    load = dict(
        Lead.objects.filter(owner_id__in=reps.values("pk"), state__in=sorted(OPEN_STATES))
        .order_by()
        .values_list("owner_id")
        .annotate(n=Count("pk"))
    )
    return [
        {
            "team": rep.team.slug,
            "rep": rep.name,
            "rep_email": rep.email,
            "role": rep.role,
            "load": load.get(rep.pk, 0),
            "capacity": rep.capacity,
            "load_ratio": _rate(load.get(rep.pk, 0), rep.capacity),
        }
        for rep in reps.order_by("team__slug", "name")
    ]


def _seconds_between(later: str, earlier: str) -> str:
    """SQL for the seconds from one timestamp column to another (the one vendor difference)."""
    if connection.vendor == "postgresql":
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
    return f"((julianday({later}) - julianday({earlier})) * 86400.0)"


def _notification_rows(messages: _Scope, timers: _Scope) -> list[dict]:
    """Messages per persona and team, each joined (a hash join, no correlated subquery) to its
    timer's row: the first breach, reassign-stage event and progress."""
    kinds = ", ".join(["%s"] * len(STAGE_MESSAGE_KINDS))
    joined = f"""
        SELECT m.persona AS persona_key, m.team_id AS team_id, m.failed AS failed,
               m.occurred_at AS sent_at,
               CASE WHEN NOT m.failed AND m.message_kind IN ({kinds}) THEN 1 ELSE 0 END AS stage,
               CASE WHEN t.met_at > m.occurred_at THEN t.met_at END AS progress_at,
               CASE WHEN t.breach_at > m.occurred_at THEN t.breach_at
                    WHEN t.reassign_at > m.occurred_at THEN t.reassign_at END AS next_at
        FROM {MESSAGES} m LEFT JOIN {TIMERS} t
            ON t.timer_id = m.timer_id AND t.timer_started_at = m.timer_started_at
            AND {timers.sql}
        WHERE {messages.sql}"""
    params = [*STAGE_MESSAGE_KINDS, *timers.params, *messages.params]
    acted = "stage = 1 AND progress_at IS NOT NULL AND (next_at IS NULL OR progress_at <= next_at)"
    ignored = "stage = 1 AND next_at IS NOT NULL AND (progress_at IS NULL OR next_at < progress_at)"
    figures = _fetch(
        f"""SELECT persona_key, team_id,
                   SUM(CASE WHEN failed THEN 0 ELSE 1 END),
                   SUM(CASE WHEN failed THEN 1 ELSE 0 END),
                   SUM(stage),
                   SUM(CASE WHEN {acted} THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {ignored} THEN 1 ELSE 0 END)
            FROM ({joined}) x GROUP BY persona_key, team_id""",
        params,
    )
    medians = ranked_percentiles(
        f"""SELECT persona_key AS c0, team_id AS c1,
                   {_seconds_between("progress_at", "sent_at")} AS p_value
            FROM ({joined}) x WHERE {acted}""",
        params,
        keys=2,
        points=(50,),
    )
    teams = {t.pk: t for t in Team.objects.filter(pk__in={row[1] for row in figures})}
    rows = []
    for persona, team_id, sent, failed, stage, acted_on, ignored_n in sorted(
        figures, key=lambda r: (r[0] or "", teams[r[1]].slug if r[1] in teams else "")
    ):
        team = teams.get(team_id)
        seconds = medians.get((persona, team_id), {}).get(50)
        rows.append(
            {
                "persona": persona,
                "team": team.slug if team else "",
                "team_name": team.name if team else "",
                "sent": int(sent or 0),
                "failed": int(failed or 0),
                "stage_messages": int(stage or 0),
                "acted_on": int(acted_on or 0),
                "ignored": int(ignored_n or 0),
                "ignored_rate": _rate(int(ignored_n or 0), int(stage or 0)),
                "p50_to_action": None if seconds is None else timedelta(seconds=round(seconds)),
            }
        )
    return rows


def _policy_rows(scope: _Scope) -> list[dict]:
    rows = []
    for policy_id, version, state, window, timers, settled, breaches, auto, reverts in _fetch(
        f"""SELECT t.policy_id, t.policy_version, t.state, t."window", COUNT(*),
                   SUM(CASE WHEN t.n_settled > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN t.n_breach > 0 THEN 1 ELSE 0 END), SUM(t.n_auto),
                   SUM(t.n_revert)
            FROM {TIMERS} t WHERE {scope.sql} AND t.policy_id IS NOT NULL AND t.n_timer > 0
            GROUP BY t.policy_id, t.policy_version, t.state, t."window\"""",
        scope.params,
    ):
        settled, breaches = int(settled or 0), int(breaches or 0)
        rows.append(
            {
                "policy_id": policy_id,
                "policy_version": version,
                "state": state,
                "window": window,
                "timers": timers,
                "settled": settled,
                "breaches": breaches,
                "breach_rate": _rate(breaches, settled),
                "auto_reassignments": int(auto or 0),
                "reverts": int(reverts or 0),
            }
        )
    rows.sort(key=lambda r: (r["state"], r["policy_id"], r["policy_version"], r["window"]))
    return rows


# --- findings -----------------------------------------------------------------------------------


def _percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate * 100:.0f} %"


def _over(rate: float | None, n: int, *, minimum: int, percent: int) -> bool:
    return rate is not None and n >= minimum and rate * 100 >= percent


def findings(report: Report) -> list[Finding]:
    """The seed's three rules, with the thresholds of the settings; a rate needs a minimum
    number of timers (or messages) behind it before it is a finding."""
    t = report.thresholds
    out = []
    for row in report.by_source:
        rate = row["breach_rate"]
        if _over(rate, row["settled"], minimum=t["min_timers"], percent=t["breach_rate_percent"]):
            out.append(
                Finding(
                    code="breach_rate",
                    text=(
                        f"{row['market_name']} · {row['source_name']}: "
                        f"{_percent(rate)} of timers breached. The window may be too "
                        "aggressive for this market and source, or the team understaffed."
                    ),
                    figure=(
                        f"{row['breached']} of {row['settled']} timers "
                        f"(threshold {t['breach_rate_percent']} %)"
                    ),
                    rows={
                        "kind": K.SLA_BREACH,
                        "market": row["market"],
                        "source": row["source"],
                    },
                )
            )
    for row in report.teams:
        rate = row["reassignment_rate"]
        if _over(rate, row["timers"], minimum=t["min_timers"], percent=t["reassign_rate_percent"]):
            out.append(
                Finding(
                    code="reassign_rate",
                    text=(
                        f"{row['team_name']}: {_percent(rate)} of timers ended in an "
                        f"auto-reassignment ({row['reverts']} reverted as misfires). Tune "
                        "the routing rule (who gets leads, capacity, hours), not the "
                        "escalation rule."
                    ),
                    figure=(
                        f"{row['auto_reassignments']} of {row['timers']} timers "
                        f"(threshold {t['reassign_rate_percent']} %)"
                    ),
                    rows={"kind": K.SLA_BREACH_AUTO_REASSIGN, "team": row["team"]},
                )
            )
    for row in report.notifications:
        rate = row["ignored_rate"]
        n = row["stage_messages"]
        if _over(rate, n, minimum=t["min_messages"], percent=t["ignored_rate_percent"]):
            persona = row["persona"] or "?"
            out.append(
                Finding(
                    code="ignored_messages",
                    text=(
                        f"{row['team_name']}: {_percent(rate)} of the warnings and breach "
                        f"notices to the {persona.replace('_', ' ')} were ignored (the next "
                        "stage fired first). The messages may be too noisy or too generic."
                    ),
                    figure=(
                        f"{row['ignored']} of {row['stage_messages']} stage messages "
                        f"(threshold {t['ignored_rate_percent']} %)"
                    ),
                    rows={"kind": K.NOTIFICATION_SENT, "team": row["team"]},
                )
            )
    return out


def finding_events(
    period: Period, rows: dict, *, team_ids=None, market: str | None = None, limit: int = 500
):
    """The log rows behind a finding (`Finding.rows`): its events in the period, newest first."""
    events = AuditEvent.objects.filter(
        timer_started_at__gte=period.start, timer_started_at__lt=period.end, kind=rows["kind"]
    )
    if rows.get("market") or market:
        events = events.filter(lead__market__code=rows.get("market") or market)
    if rows.get("source"):
        events = events.filter(lead__source__code=rows["source"])
    if rows.get("team"):
        events = events.filter(team__slug=rows["team"])
    if rows.get("kind") == K.NOTIFICATION_SENT:
        events = events.filter(details__kind__in=STAGE_MESSAGE_KINDS)
    if team_ids is not None:
        events = events.filter(team_id__in=sorted(team_ids))
    return events.select_related("team__market").order_by("-occurred_at", "-pk")[:limit]
