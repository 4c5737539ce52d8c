"""Two tables derived from the audit log, kept by the database as events are inserted, for the
calibration report (SPEC §11) to read instead of the log:

- `audit_timersummary`: one row per timer (and the instant it started), what its events say:
  where it belongs (lead, the lead's market and source, team, state, policy version) and what
  happened to it (flags and counts, the business time at progress, the first instants of its
  progress, breach and reassign stage);
- `audit_timermessage`: one narrow row per notification event of a timer (persona, team, kind,
  instant), without the event's JSON.

The rule for each column is written once, here, and rendered as SQL for the two databases: a
statement-level trigger with a transition table on PostgreSQL (one `INSERT … ON CONFLICT DO
UPDATE` per INSERT or COPY of events, however many rows) and a row trigger on SQLite. The same
statement, run over the whole log, fills the tables when they are created (migration 0007). The
log stays append-only; these tables are derived data (flush empties them with the log).

The market and source are the lead's when the event is written (the lead exists before its
timer's events); a timer's team is the smallest team id among its events (a lead keeps its team:
nothing in the app moves a lead to another team)."""

from __future__ import annotations

from audit.models import AuditKind

K = AuditKind
EVENTS = "audit_auditevent"
TIMERS = "audit_timersummary"
MESSAGES = "audit_timermessage"
LEADS = "leadops_lead"  # the lead's market and source

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
SUMMARISED_KINDS = (*TIMER_KINDS, K.REASSIGN_NO_CANDIDATE, K.REASSIGN_LIMIT_REACHED)
MESSAGE_KINDS = (K.NOTIFICATION_SENT, K.NOTIFICATION_FAILED)


def _in(kinds) -> str:
    return "e.kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _text(vendor: str, key: str) -> str:
    """A text value of the event's `details`."""
    if vendor == "postgresql":
        return f"e.details ->> '{key}'"
    return f"json_extract(e.details, '$.{key}')"


def _outcome(vendor: str) -> str:
    return _text(vendor, "outcome")


# (column, aggregate over the new events `e` joined to their lead `l`, how it merges into the
# row already there: least | greatest | add).
def _timer_columns(vendor: str) -> list[tuple[str, str, str]]:
    def count(condition):
        return f"COUNT(*) FILTER (WHERE {condition})"

    met = f"e.kind = '{K.SLA_MET}'"
    return [
        ("lead_id", "MIN(e.lead_id)", "least"),
        ("market_id", "MIN(l.market_id)", "least"),
        ("source_id", "MIN(l.source_id)", "least"),
        ("team_id", "MIN(e.team_id)", "least"),
        ("state", "MIN(e.state)", "least"),
        ("policy_id", "MIN(e.policy_id)", "least"),
        ("policy_version", "MIN(e.policy_version)", "least"),
        ('"window"', 'MIN(e."window")', "least"),
        ("n_timer", count(_in(TIMER_KINDS)), "add"),
        ("n_settled", count(_in(SETTLED)), "add"),
        ("n_breach", count(f"e.kind = '{K.SLA_BREACH}'"), "add"),
        ("n_met", count(f"{met} AND {_outcome(vendor)} = 'met'"), "add"),
        ("n_met_late", count(f"{met} AND {_outcome(vendor)} = 'met_late'"), "add"),
        ("n_cancelled", count(f"e.kind = '{K.SLA_CANCELLED}'"), "add"),
        ("n_auto", count(f"e.kind = '{K.SLA_BREACH_AUTO_REASSIGN}'"), "add"),
        ("n_revert", count(f"e.kind = '{K.REASSIGNMENT_REVERTED}'"), "add"),
        ("n_no_candidate", count(f"e.kind = '{K.REASSIGN_NO_CANDIDATE}'"), "add"),
        ("n_limit", count(f"e.kind = '{K.REASSIGN_LIMIT_REACHED}'"), "add"),
        ("progress_elapsed", f"MAX(e.elapsed) FILTER (WHERE {met})", "greatest"),
        ("met_at", f"MIN(e.occurred_at) FILTER (WHERE {met})", "least"),
        ("breach_at", f"MIN(e.occurred_at) FILTER (WHERE e.kind = '{K.SLA_BREACH}')", "least"),
        ("reassign_at", f"MIN(e.occurred_at) FILTER (WHERE {_in(NEXT_STAGE_KINDS[1:])})", "least"),
    ]


def _merge(vendor: str, column: str, how: str) -> str:
    old, new = f"{TIMERS}.{column}", f"excluded.{column}"
    if how == "add":
        return f"{old} + {new}"
    if vendor == "postgresql":  # LEAST and GREATEST skip NULLs
        return f"{'LEAST' if how == 'least' else 'GREATEST'}({old}, {new})"
    # SQLite's min() and max() of several values are NULL when one is: skip NULLs by hand.
    return f"{'min' if how == 'least' else 'max'}(COALESCE({old}, {new}), COALESCE({new}, {old}))"


def timer_upsert_sql(vendor: str, source: str) -> str:
    """Fold the events of `source` (a table, the transition table, or one row) into the timers'
    rows."""
    columns = _timer_columns(vendor)
    names = ", ".join(name for name, _, _ in columns)
    aggregates = ",\n       ".join(agg for _, agg, _ in columns)
    merges = ",\n    ".join(f"{name} = {_merge(vendor, name, how)}" for name, _, how in columns)
    return f"""INSERT INTO {TIMERS} (timer_started_at, timer_id, {names})
SELECT e.timer_started_at, e.timer_id,
       {aggregates}
FROM {source} e LEFT JOIN {LEADS} l ON l.id = e.lead_id
WHERE e.timer_id IS NOT NULL AND e.timer_started_at IS NOT NULL AND {_in(SUMMARISED_KINDS)}
GROUP BY e.timer_started_at, e.timer_id
ON CONFLICT (timer_started_at, timer_id) DO UPDATE SET
    {merges}"""


def message_insert_sql(vendor: str, source: str) -> str:
    """Copy the notification events of `source` into the narrow message rows."""
    return f"""INSERT INTO {MESSAGES} (event_id, timer_started_at, timer_id, market_id, team_id,
    failed, persona, message_kind, occurred_at)
SELECT e.id, e.timer_started_at, e.timer_id, l.market_id, e.team_id,
       e.kind = '{K.NOTIFICATION_FAILED}', {_text(vendor, "persona")}, {_text(vendor, "kind")},
       e.occurred_at
FROM {source} e LEFT JOIN {LEADS} l ON l.id = e.lead_id
WHERE e.timer_started_at IS NOT NULL AND {_in(MESSAGE_KINDS)}"""


_EVENT_COLUMNS = (
    "id",
    "kind",
    "occurred_at",
    "lead_id",
    "team_id",
    "timer_id",
    "timer_started_at",
    "state",
    "policy_id",
    "policy_version",
    '"window"',
    "elapsed",
    "details",
)
_SQLITE_NEW = "(SELECT " + ", ".join(f"NEW.{c} AS {c}" for c in _EVENT_COLUMNS) + ")"
_SQLITE_TRIGGERS = ("audit_event_summarise_timer", "audit_event_summarise_message")


def create_triggers_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION audit_event_summarise() RETURNS trigger AS $$
BEGIN
{timer_upsert_sql(vendor, "added")};
{message_insert_sql(vendor, "added")};
RETURN NULL;
END;
$$ LANGUAGE plpgsql""",
            f"DROP TRIGGER IF EXISTS audit_event_summarise ON {EVENTS}",
            f"""CREATE TRIGGER audit_event_summarise AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION audit_event_summarise()""",
        ]
    timer_name, message_name = _SQLITE_TRIGGERS
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {timer_name} AFTER INSERT ON {EVENTS}
WHEN NEW.timer_id IS NOT NULL AND NEW.timer_started_at IS NOT NULL
    AND {_in(SUMMARISED_KINDS).replace("e.kind", "NEW.kind")}
BEGIN
{timer_upsert_sql(vendor, _SQLITE_NEW)};
END""",
        f"""CREATE TRIGGER IF NOT EXISTS {message_name} AFTER INSERT ON {EVENTS}
WHEN NEW.timer_started_at IS NOT NULL AND {_in(MESSAGE_KINDS).replace("e.kind", "NEW.kind")}
BEGIN
{message_insert_sql(vendor, _SQLITE_NEW)};
END""",
    ]


def drop_triggers_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS audit_event_summarise ON {EVENTS}",
            "DROP FUNCTION IF EXISTS audit_event_summarise()",
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS]


def backfill_sql(vendor: str) -> list[str]:
    """Fill both tables from the whole log (when they are created)."""
    return [timer_upsert_sql(vendor, EVENTS), message_insert_sql(vendor, EVENTS)]
