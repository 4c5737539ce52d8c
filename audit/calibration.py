"""Calibration (SPEC §11): what a quarter of escalations says about the windows, the routing and
the messages, read from the audit log.

Everything here is a reading of the log, aggregated in SQL (no Python loop over timers or
events), through the per-timer and per-message rows the database keeps from it as events are
written (audit/timer_summary.py). The log already keeps each fact as it was when it happened:
the business time a timer had used when the progress came (`elapsed` of `sla_met`, measured on
the timer's own clock and calendar), the policy version at a breach, the team at a reassignment.
An event belongs to the period its timer started in (`timer_started_at`), so a timer is counted
once, in one quarter.

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
    `c{keys-1}` and the value `p_value`: each row is ranked in its group by a window function
    and only the rows at the wanted ranks come back. `{group: {percent: value}}`."""
    groups = ", ".join(f"c{i}" for i in range(keys))
    wanted = " OR ".join(
        f"(p_rank * 100 >= p_count * {int(p)} AND (p_rank - 1) * 100 < p_count * {int(p)})"
        for p in points
    )
    out: dict[tuple, dict[int, object]] = {}
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


@dataclass(frozen=True)
class Grouped:
    """One group of `grouped`: its figures (in the order asked) and percentiles."""

    figures: tuple
    percentiles: dict


def grouped(
    rows: str,
    params,
    *,
    sets: tuple[tuple[str, ...], ...],
    figures: tuple[str, ...],
    having: str = "",
    value: str = "",
    value_rows: str = "TRUE",
    points=(50, 90),
) -> dict[tuple[str, ...], dict[tuple, Grouped]]:
    """Aggregates over `rows` (`FROM … WHERE …`) for each grouping set (a tuple of columns):
    the `figures` (SQL aggregates), and, with a `value`, its nearest-rank percentiles over the
    rows where `value_rows` holds. `{set: {group: Grouped}}`; `having` keeps groups.

    On PostgreSQL one statement with GROUPING SETS, the percentiles by `percentile_disc(f)`,
    the value at rank ceil(n × f): the nearest rank (the doubles 0.5 and 0.9 times any n round
    to the same ceiling as the exact product). On SQLite (no GROUPING SETS, no ordered-set
    aggregates) one GROUP BY per set, and the percentiles by `ranked_percentiles`."""
    having_sql = f" HAVING {having}" if having else ""
    out: dict[tuple[str, ...], dict[tuple, Grouped]] = {s: {} for s in sets}
    wanted = tuple(points) if value else ()
    if connection.vendor == "postgresql":
        columns = list(dict.fromkeys(c for s in sets for c in s))
        select = [f"GROUPING({', '.join(columns)})", *columns, *figures]
        if wanted:
            fractions = ", ".join(f"{int(p) / 100!r}" for p in wanted)
            select.append(
                f"percentile_disc(ARRAY[{fractions}]::float8[]) WITHIN GROUP (ORDER BY {value})"
                f" FILTER (WHERE {value_rows})"
            )
        # GROUPING(...) has a 1 bit (the first column the highest) for each column left out.
        masks = {
            sum(1 << (len(columns) - 1 - i) for i, c in enumerate(columns) if c not in s): s
            for s in sets
        }
        grouping_sets = ", ".join(f"({', '.join(s)})" for s in sets)
        for row in _fetch(
            f"SELECT {', '.join(select)} {rows} GROUP BY GROUPING SETS ({grouping_sets})"
            f"{having_sql}",
            params,
        ):
            found = masks[row[0]]
            by_column = dict(zip(columns, row[1:], strict=False))
            values = row[1 + len(columns) :]
            figures_of = tuple(values[: len(figures)])
            percentiles = (
                dict(zip(wanted, values[len(figures)] or [None] * len(wanted), strict=True))
                if wanted
                else {}
            )
            out[found][tuple(by_column[c] for c in found)] = Grouped(figures_of, percentiles)
        return out
    for s in sets:
        keys = ", ".join(s)
        ranked = (
            ranked_percentiles(
                f"SELECT {', '.join(f'{c} AS c{i}' for i, c in enumerate(s))}, {value} AS p_value "
                f"{rows} AND {value_rows}",
                params,
                keys=len(s),
                points=wanted,
            )
            if wanted
            else {}
        )
        for row in _fetch(
            f"SELECT {keys}, {', '.join(figures)} {rows} GROUP BY {keys}{having_sql}", params
        ):
            group = tuple(row[: len(s)])
            out[s][group] = Grouped(tuple(row[len(s) :]), ranked.get(group, {}))
    return out


def percentiles(
    rows: str,
    params,
    *,
    sets: tuple[tuple[str, ...], ...],
    value: str,
    bucket: str,
    points=(50, 90),
) -> dict[tuple[str, ...], dict[tuple, Grouped]]:
    """The nearest-rank percentiles of `value` over `rows` (`FROM … WHERE …`, rows that have a
    value) for each grouping set, and how many values: `{set: {group: Grouped((n,), {p: v})}}`.

    On PostgreSQL without sorting every value: `bucket` is a coarse, non-decreasing function of
    the value (whole minutes); one statement counts the values per group and bucket, finds by
    running sums the bucket holding each wanted rank and the rank inside it, then ranks only the
    rows of those buckets. Exact, like `percentile_disc`; elsewhere `ranked_percentiles`."""
    out: dict[tuple[str, ...], dict[tuple, Grouped]] = {s: {} for s in sets}
    if connection.vendor != "postgresql":
        for s in sets:
            keys = ", ".join(s)
            counts = dict(
                (tuple(row[:-1]), row[-1])
                for row in _fetch(f"SELECT {keys}, COUNT(*) {rows} GROUP BY {keys}", params)
            )
            ranked = ranked_percentiles(
                f"SELECT {', '.join(f'{c} AS c{i}' for i, c in enumerate(s))}, "
                f"{value} AS p_value {rows}",
                params,
                keys=len(s),
                points=points,
            )
            for group, n in counts.items():
                out[s][group] = Grouped((n,), ranked.get(group, {}))
        return out
    columns = list(dict.fromkeys(c for s in sets for c in s))
    cs = [f"c{i}" for i in range(len(columns))]
    alias = dict(zip(columns, cs, strict=True))
    groups = ", ".join(cs)
    masks = {
        sum(1 << (len(cs) - 1 - i) for i, c in enumerate(columns) if c not in s): s for s in sets
    }
    grouping_sets = ", ".join(f"({', '.join([*(alias[c] for c in s), 'b'])})" for s in sets)
    same_group = " OR ".join(
        f"(tg.g = {mask} AND "
        + " AND ".join(f"v.{alias[c]} IS NOT DISTINCT FROM tg.{alias[c]}" for c in s)
        + ")"
        for mask, s in masks.items()
    )
    rank = "GREATEST(1, CEIL(c.total * p.pct / 100.0))::bigint"
    found = _fetch(
        f"""WITH v AS NOT MATERIALIZED (
                SELECT {", ".join(f"{c} AS {alias[c]}" for c in columns)}, {value} AS p,
                       {bucket} AS b
                {rows}),
            fine AS (SELECT {groups}, b, COUNT(*) AS n FROM v GROUP BY {groups}, b),
            h AS (SELECT GROUPING({groups}) AS g, {groups}, b, SUM(n)::bigint AS n
                  FROM fine GROUP BY GROUPING SETS ({grouping_sets})),
            c AS (SELECT h.*,
                         SUM(n) OVER (PARTITION BY g, {groups} ORDER BY b)::bigint - n AS below,
                         SUM(n) OVER (PARTITION BY g, {groups})::bigint AS total
                  FROM h),
            tg AS (SELECT c.g, {", ".join(f"c.{c}" for c in cs)}, c.b, p.pct, c.total,
                          {rank} - c.below AS k
                   FROM c CROSS JOIN (VALUES {", ".join(f"({int(x)})" for x in points)}) p(pct)
                   WHERE {rank} > c.below AND {rank} <= c.below + c.n),
            picked AS (SELECT tg.g, {", ".join(f"tg.{c}" for c in cs)}, tg.pct, tg.total, tg.k,
                              v.p, ROW_NUMBER() OVER (
                                  PARTITION BY tg.g, {", ".join(f"tg.{c}" for c in cs)}, tg.pct
                                  ORDER BY v.p) AS rn
                       FROM v JOIN tg ON v.b = tg.b AND ({same_group})
                       -- only the rows of the wanted buckets reach the join
                       WHERE v.b = ANY (ARRAY(SELECT DISTINCT b FROM tg)))
        SELECT g, {groups}, pct, total, p FROM picked WHERE rn = k""",
        params,
    )
    for row in found:
        s = masks[row[0]]
        by_column = dict(zip(columns, row[1 : 1 + len(cs)], strict=True))
        pct, total, v = row[1 + len(cs) :]
        group = tuple(by_column[c] for c in s)
        out[s].setdefault(group, Grouped((total,), {})).percentiles[pct] = v
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
        _without_jit()
        by_state, by_source, progressed = _timer_figures(timers)
        report.by_state = _timer_rows(by_state)
        report.by_source = _timer_rows(by_source)
        report.progress_by_state = _progress_by_state(progressed)
        by_team, by_policy = _team_and_policy_figures(timers)
        report.teams = _team_rows(by_team, market=market, team_ids=team_ids)
        report.policies = _policy_rows(by_policy)
        report.notifications = _notification_rows(
            _scope(period, market=market, team_ids=team_ids, alias="m"), timers
        )
    report.reps = _rep_rows(market=market, team_ids=team_ids)
    report.findings = findings(report)
    return report


def _without_jit() -> None:
    """PostgreSQL compiles a statement it thinks costly with LLVM (JIT): for the report's
    statements, each under a second, compiling took longer than it saved (0.1–0.9 s each,
    measured at 1M timers). Off for this transaction only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


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


_BY_STATE = ("t.market_id", "t.source_id", "t.state")
_BY_SOURCE = ("t.market_id", "t.source_id")
_STATE = ("t.state",)
_MINUTES = "floor(date_part('epoch', {}) / 60)"  # PostgreSQL only (percentiles' buckets)


def _timer_figures(timers: _Scope) -> tuple[dict, dict, dict]:
    """Per (market, source, state) and per (market, source): leads, timers, settled, met, met
    late, breached and cancelled timers, and the p50/p90 business time to progress; per state
    the timers that progressed and their p50/p90."""
    counted = "t.n_timer > 0"
    figures = grouped(
        f"FROM {TIMERS} t WHERE {timers.sql}",
        timers.params,
        sets=(_BY_STATE, _BY_SOURCE),
        figures=(
            f"COUNT(DISTINCT CASE WHEN {counted} THEN t.lead_id END)",
            f"SUM(CASE WHEN {counted} THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {counted} AND t.n_settled > 0 THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {counted} THEN t.n_met ELSE 0 END)",
            f"SUM(CASE WHEN {counted} THEN t.n_met_late ELSE 0 END)",
            f"SUM(CASE WHEN {counted} AND t.n_breach > 0 THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {counted} AND t.n_cancelled > 0 THEN 1 ELSE 0 END)",
        ),
        having=f"SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) > 0",
    )
    progress = percentiles(
        f"FROM {TIMERS} t WHERE {timers.sql} AND t.progress_elapsed IS NOT NULL",
        timers.params,
        sets=(_BY_STATE, _BY_SOURCE, _STATE),
        value="t.progress_elapsed",
        bucket=_MINUTES.format("t.progress_elapsed"),
    )

    def with_progress(found: dict, progressed: dict) -> dict:
        return {
            g: Grouped(f.figures, progressed[g].percentiles if g in progressed else {})
            for g, f in found.items()
        }

    return (
        with_progress(figures[_BY_STATE], progress[_BY_STATE]),
        with_progress(figures[_BY_SOURCE], progress[_BY_SOURCE]),
        progress[_STATE],
    )


def _timer_rows(groups: dict) -> list[dict]:
    markets, sources = _names()
    rows = []
    for group, found in groups.items():
        market, source = markets.get(group[0]), sources.get(group[1])
        leads, timers, settled, met, met_late, breached, cancelled = (
            int(v or 0) for v in found.figures
        )
        rows.append(
            {
                "market": market.code if market else "",
                "source": source.code if source else "",
                "state": group[2] if len(group) > 2 else "",
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
                "p50_to_progress": _duration(found.percentiles.get(50)),
                "p90_to_progress": _duration(found.percentiles.get(90)),
            }
        )
    order = {state: i for i, state in enumerate(_STATE_ORDER)}
    rows.sort(key=lambda r: (r["market"], r["source"], order.get(r["state"], -1)))
    return rows


def _progress_by_state(by_state: dict) -> list[dict]:
    return [
        {
            "state": state,
            "progressed": by_state[(state,)].figures[0],
            "p50_to_progress": _duration(by_state[(state,)].percentiles.get(50)),
            "p90_to_progress": _duration(by_state[(state,)].percentiles.get(90)),
        }
        for (state,) in sorted(by_state, key=lambda g: _STATE_ORDER.index(g[0]))
    ]


_BY_TEAM = ("x.team_id",)
_BY_POLICY = ("x.policy_id", "x.policy_version", "x.state", 'x."window"')


def _team_and_policy_figures(timers: _Scope) -> tuple[dict, dict]:
    """Per team: timers, auto-reassignments, reverts, no-candidate and limit events; per policy
    version, state and window, of the timers that moved: timers, settled, breached,
    auto-reassignments and reverts. The sums per (team, policy version, state, window) come
    first, in one scan hashed in parallel; both tables add them up."""
    counted = "t.n_timer > 0"
    sums = f"""FROM (
        SELECT t.team_id, t.policy_id, t.policy_version, t.state, t."window",
               SUM(CASE WHEN {counted} THEN 1 ELSE 0 END) AS timers, SUM(t.n_auto) AS auto,
               SUM(t.n_revert) AS reverts, SUM(t.n_no_candidate) AS no_candidate,
               SUM(t.n_limit) AS at_limit,
               SUM(CASE WHEN {counted} AND t.n_settled > 0 THEN 1 ELSE 0 END) AS settled,
               SUM(CASE WHEN {counted} AND t.n_breach > 0 THEN 1 ELSE 0 END) AS breached,
               SUM(CASE WHEN {counted} THEN t.n_auto ELSE 0 END) AS moved_auto,
               SUM(CASE WHEN {counted} THEN t.n_revert ELSE 0 END) AS moved_reverts
        FROM {TIMERS} t WHERE {timers.sql}
        GROUP BY t.team_id, t.policy_id, t.policy_version, t.state, t."window"
    ) x WHERE TRUE"""
    figures = grouped(
        sums,
        timers.params,
        sets=(_BY_TEAM, _BY_POLICY),
        figures=tuple(
            f"SUM(x.{name})"
            for name in (
                "timers",
                "auto",
                "reverts",
                "no_candidate",
                "at_limit",
                "settled",
                "breached",
                "moved_auto",
                "moved_reverts",
            )
        ),
    )
    by_team = {g: f.figures[:5] for g, f in figures[_BY_TEAM].items()}
    by_policy = {g: (f.figures[0], *f.figures[5:]) for g, f in figures[_BY_POLICY].items()}
    return by_team, by_policy


def _team_rows(by_team: dict, *, market, team_ids) -> list[dict]:
    teams = Team.objects.select_related("market").order_by("market__code", "slug")
    if market:
        teams = teams.filter(market__code=market)
    if team_ids is not None:
        teams = teams.filter(pk__in=sorted(team_ids))
    figures = {group[0]: found for group, found in by_team.items() if group[0]}
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
    by_persona = grouped(
        f"FROM ({joined}) x WHERE TRUE",
        params,
        sets=(("persona_key", "team_id"),),
        figures=(
            "SUM(CASE WHEN failed THEN 0 ELSE 1 END)",
            "SUM(CASE WHEN failed THEN 1 ELSE 0 END)",
            "SUM(stage)",
            f"SUM(CASE WHEN {acted} THEN 1 ELSE 0 END)",
            f"SUM(CASE WHEN {ignored} THEN 1 ELSE 0 END)",
        ),
        value=_seconds_between("progress_at", "sent_at"),
        value_rows=acted,
        points=(50,),
    )[("persona_key", "team_id")]
    teams = {t.pk: t for t in Team.objects.filter(pk__in={g[1] for g in by_persona})}
    rows = []
    for persona, team_id in sorted(
        by_persona, key=lambda g: (g[0] or "", teams[g[1]].slug if g[1] in teams else "")
    ):
        found = by_persona[(persona, team_id)]
        sent, failed, stage, acted_on, ignored_n = found.figures
        team = teams.get(team_id)
        seconds = found.percentiles.get(50)
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


def _policy_rows(by_policy: dict) -> list[dict]:
    rows = []
    for (policy_id, version, state, window), found in by_policy.items():
        timers, settled, breaches, auto, reverts = (int(v or 0) for v in found)
        if policy_id is None or not timers:
            continue
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
                "auto_reassignments": auto,
                "reverts": reverts,
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
