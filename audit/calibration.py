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
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q
from django.db.models.fields.json import KT

from audit.models import AuditEvent, AuditKind
from leadops.models import OPEN_STATES, Lead, LeadState, Source
from teams.models import Market, Rep, Team

K = AuditKind
# The events that say a timer ended (progress, cancelled, handed to someone else, a revert ended
# it), or reached the breach stage: the breach rate's denominator.
SETTLED = (
    K.SLA_BREACH,
    K.SLA_MET,
    K.SLA_CANCELLED,
    K.LEAD_ASSIGNED,
    K.SLA_BREACH_AUTO_REASSIGN,
    K.REASSIGNMENT_REVERTED,
)
# Every event that says a timer existed and moved (a warned, still running timer is one).
TIMER_KINDS = (*SETTLED, K.SLA_WARNING)
# The stage after a message's stage (for "ignored"): the breach, or the reassign stage's events.
NEXT_STAGE_KINDS = (
    K.SLA_BREACH,
    K.SLA_BREACH_AUTO_REASSIGN,
    K.REASSIGN_NO_CANDIDATE,
    K.REASSIGN_LIMIT_REACHED,
)
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
    and only the rows at the wanted ranks come back."""
    groups = ", ".join(f"c{i}" for i in range(keys))
    wanted = " OR ".join(
        f"(p_rank * 100 >= p_count * {int(p)} AND (p_rank - 1) * 100 < p_count * {int(p)})"
        for p in points
    )
    out: dict[tuple, dict[int, object]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {groups}, p_value, p_rank, p_count FROM (
                SELECT s.*, ROW_NUMBER() OVER (PARTITION BY {groups} ORDER BY p_value) AS p_rank,
                       COUNT(*) OVER (PARTITION BY {groups}) AS p_count
                FROM ({sql}) s
            ) ranked WHERE {wanted}""",
            params,
        )
        for row in cursor.fetchall():
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
    a team lead's teams otherwise) narrow it."""
    events = AuditEvent.objects.filter(
        timer_started_at__gte=period.start, timer_started_at__lt=period.end
    )
    if market:
        events = events.filter(lead__market__code=market)
    if team_ids is not None:
        events = events.filter(team_id__in=sorted(team_ids))
    report = Report(
        period=period, market=market, generated_at=now, thresholds=thresholds_in_force()
    )
    with _per_timer_table(events) as table:
        report.by_state = _timer_rows(table, with_state=True)
        report.by_source = _timer_rows(table, with_state=False)
        report.progress_by_state = _progress_by_state(table)
        report.teams = _team_rows(table, market=market, team_ids=team_ids)
        report.notifications = _notification_rows(events, table)
        report.policies = _policy_rows(table)
    report.reps = _rep_rows(market=market, team_ids=team_ids)
    report.findings = findings(report)
    return report


PER_TIMER = "calibration_timers"


@contextmanager
def _per_timer_table(events):
    """One row per timer of the period, built by one pass over its events: where it belongs
    (lead, market, source, team, state, policy version) and what happened to it (flags and
    counts, the business time at progress, the instants of its breach, reassign stage and
    progress). Every table of the report is then a GROUP BY over these rows (about half as many
    as the events, and no DISTINCT). A temporary table: private to this connection, dropped
    at the end."""
    kinds = {*TIMER_KINDS, K.REASSIGN_NO_CANDIDATE, K.REASSIGN_LIMIT_REACHED}

    def n(condition):
        return Count("pk", filter=condition)

    per_timer = (
        events.filter(kind__in=sorted(kinds), timer_id__isnull=False)
        .order_by()
        .values("timer_id")
        .annotate(
            t_lead=Min("lead_id"),
            t_market=Min("lead__market_id"),
            t_source=Min("lead__source_id"),
            t_team=Min("team_id"),
            t_state=Min("state"),
            t_policy=Min("policy_id"),
            t_version=Min("policy_version"),
            t_window=Min("window"),
            n_timer=n(Q(kind__in=TIMER_KINDS)),
            n_settled=n(Q(kind__in=SETTLED)),
            n_breach=n(Q(kind=K.SLA_BREACH)),
            n_met=n(Q(kind=K.SLA_MET, details__outcome="met")),
            n_met_late=n(Q(kind=K.SLA_MET, details__outcome="met_late")),
            n_cancelled=n(Q(kind=K.SLA_CANCELLED)),
            n_auto=n(Q(kind=K.SLA_BREACH_AUTO_REASSIGN)),
            n_revert=n(Q(kind=K.REASSIGNMENT_REVERTED)),
            n_no_candidate=n(Q(kind=K.REASSIGN_NO_CANDIDATE)),
            n_limit=n(Q(kind=K.REASSIGN_LIMIT_REACHED)),
            progress_elapsed=Max("elapsed", filter=Q(kind=K.SLA_MET)),
            met_at=Min("occurred_at", filter=Q(kind=K.SLA_MET)),
            breach_at=Min("occurred_at", filter=Q(kind=K.SLA_BREACH)),
            reassign_at=Min("occurred_at", filter=Q(kind__in=NEXT_STAGE_KINDS[1:])),
        )
    )
    sql, params = per_timer.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {PER_TIMER}")
        cursor.execute(f"CREATE TEMPORARY TABLE {PER_TIMER} AS {sql}", params)
        try:
            yield PER_TIMER
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {PER_TIMER}")


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _names():
    markets = {m.pk: m for m in Market.objects.all()}
    sources = {s.pk: s for s in Source.objects.all()}
    return markets, sources


def _timer_rows(table: str, *, with_state: bool) -> list[dict]:
    groups = "t_market, t_source" + (", t_state" if with_state else "")
    figures = _fetch(
        f"""SELECT {groups}, COUNT(DISTINCT t_lead), COUNT(*),
                   SUM(CASE WHEN n_settled > 0 THEN 1 ELSE 0 END), SUM(n_met), SUM(n_met_late),
                   SUM(CASE WHEN n_breach > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN n_cancelled > 0 THEN 1 ELSE 0 END)
            FROM {table} WHERE n_timer > 0 GROUP BY {groups}"""
    )
    keys = 3 if with_state else 2
    progress = ranked_percentiles(
        f"SELECT {', '.join(f'{g} AS c{i}' for i, g in enumerate(groups.split(', ')))}, "
        f"progress_elapsed AS p_value FROM {table} WHERE progress_elapsed IS NOT NULL",
        (),
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


def _progress_by_state(table: str) -> list[dict]:
    counts = dict(
        _fetch(
            f"SELECT t_state, COUNT(*) FROM {table} WHERE progress_elapsed IS NOT NULL "
            "GROUP BY t_state"
        )
    )
    figures = ranked_percentiles(
        f"SELECT t_state AS c0, progress_elapsed AS p_value FROM {table} "
        "WHERE progress_elapsed IS NOT NULL",
        (),
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


def _team_rows(table: str, *, market, team_ids) -> list[dict]:
    teams = Team.objects.select_related("market").order_by("market__code", "slug")
    if market:
        teams = teams.filter(market__code=market)
    if team_ids is not None:
        teams = teams.filter(pk__in=sorted(team_ids))
    figures = {
        row[0]: row[1:]
        for row in _fetch(
            f"""SELECT t_team, SUM(CASE WHEN n_timer > 0 THEN 1 ELSE 0 END), SUM(n_auto),
                       SUM(n_revert), SUM(n_no_candidate), SUM(n_limit)
                FROM {table} WHERE t_team IS NOT NULL GROUP BY t_team"""
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


def _notification_rows(events, table: str) -> list[dict]:
    """Messages per persona and team, each joined (a hash join, no correlated subquery) to its
    timer's row: the first breach, reassign-stage event and progress."""
    messages = (
        events.filter(kind__in=(K.NOTIFICATION_SENT, K.NOTIFICATION_FAILED))
        .order_by()
        .annotate(persona_key=KT("details__persona"), message_kind=KT("details__kind"))
        .values("timer_id", "team_id", "kind", "occurred_at", "persona_key", "message_kind")
    )
    message_sql, message_params = messages.query.sql_with_params()
    kinds = ", ".join(["%s"] * len(STAGE_MESSAGE_KINDS))
    joined = f"""
        SELECT m.persona_key AS persona_key, m.team_id AS team_id, m.kind AS kind,
               m.occurred_at AS sent_at,
               CASE WHEN m.kind = %s AND m.message_kind IN ({kinds}) THEN 1 ELSE 0 END AS stage,
               CASE WHEN t.met_at > m.occurred_at THEN t.met_at END AS progress_at,
               CASE WHEN t.breach_at > m.occurred_at THEN t.breach_at
                    WHEN t.reassign_at > m.occurred_at THEN t.reassign_at END AS next_at
        FROM ({message_sql}) m LEFT JOIN {table} t ON t.timer_id = m.timer_id"""
    params = [K.NOTIFICATION_SENT, *STAGE_MESSAGE_KINDS, *message_params]
    acted = "stage = 1 AND progress_at IS NOT NULL AND (next_at IS NULL OR progress_at <= next_at)"
    ignored = "stage = 1 AND next_at IS NOT NULL AND (progress_at IS NULL OR next_at < progress_at)"
    figures = _fetch(
        f"""SELECT persona_key, team_id,
                   SUM(CASE WHEN kind = %s THEN 1 ELSE 0 END),
                   SUM(CASE WHEN kind = %s THEN 1 ELSE 0 END),
                   SUM(stage),
                   SUM(CASE WHEN {acted} THEN 1 ELSE 0 END),
                   SUM(CASE WHEN {ignored} THEN 1 ELSE 0 END)
            FROM ({joined}) x GROUP BY persona_key, team_id""",
        [K.NOTIFICATION_SENT, K.NOTIFICATION_FAILED, *params],
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


def _policy_rows(table: str) -> list[dict]:
    rows = []
    for policy_id, version, state, window, timers, settled, breaches, auto, reverts in _fetch(
        f"""SELECT t_policy, t_version, t_state, t_window, COUNT(*),
                   SUM(CASE WHEN n_settled > 0 THEN 1 ELSE 0 END),
                   SUM(CASE WHEN n_breach > 0 THEN 1 ELSE 0 END), SUM(n_auto), SUM(n_revert)
            FROM {table} WHERE t_policy IS NOT NULL AND n_timer > 0
            GROUP BY t_policy, t_version, t_state, t_window"""
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
