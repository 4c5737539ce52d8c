"""The calibration report as text (findings first), JSON and CSV: one module for the command,
the admin page and its downloads."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from audit.calibration import Report

# table name -> (title, [(column key, header)]). JSON and CSV keep the codes (market, source,
# team slug, persona) beside the names so other tools can join on them.
# The figures every timer table gives after its keys (market, source, state).
TIMER_FIGURES = [
    ("leads", "leads"),
    ("timers", "timers"),
    ("met", "met"),
    ("met_late", "met late"),
    ("breached", "breached"),
    ("settled", "ended or breached"),
    ("breach_rate", "breach rate"),
    ("p50_to_progress", "p50 to progress (business)"),
    ("p90_to_progress", "p90 to progress (business)"),
]

TABLES = {
    "by_source": (
        "Timers per market and source",
        [
            ("market", "market"),
            ("market_name", "market name"),
            ("source", "source"),
            ("source_name", "source name"),
            *TIMER_FIGURES,
        ],
    ),
    "by_state": (
        "Timers per market, source and state",
        [
            ("market", "market"),
            ("source", "source"),
            ("state", "state"),
            *TIMER_FIGURES,
        ],
    ),
    "teams": (
        "Reassignments per team",
        [
            ("team", "team"),
            ("team_name", "team name"),
            ("market", "market"),
            ("timers", "timers"),
            ("auto_reassignments", "auto-reassignments"),
            ("reassignment_rate", "reassignment rate"),
            ("reverts", "reverts (misfires)"),
            ("no_candidate", "no candidate"),
            ("limit_reached", "limit reached"),
        ],
    ),
    "reps": (
        "Load now against capacity",
        [
            ("team", "team"),
            ("rep", "rep"),
            ("rep_email", "email"),
            ("role", "role"),
            ("load", "open leads"),
            ("capacity", "capacity"),
            ("load_ratio", "load ratio"),
        ],
    ),
    "notifications": (
        "Messages per persona and team",
        [
            ("persona", "persona"),
            ("team", "team"),
            ("team_name", "team name"),
            ("sent", "sent"),
            ("failed", "failed"),
            ("stage_messages", "warnings and breach notices sent"),
            ("acted_on", "acted on"),
            ("ignored", "ignored"),
            ("ignored_rate", "ignored rate"),
            ("p50_to_action", "p50 message to action"),
        ],
    ),
    "policies": (
        "Per policy version",
        [
            ("policy_id", "policy"),
            ("policy_version", "version"),
            ("state", "state"),
            ("window", "window"),
            ("timers", "timers"),
            ("settled", "ended or breached"),
            ("breaches", "breaches"),
            ("breach_rate", "breach rate"),
            ("auto_reassignments", "auto-reassignments"),
            ("reverts", "reverts"),
        ],
    ),
}


def duration_text(value: timedelta | None) -> str:
    """Business durations in hours and minutes (`40 h`, `2 h 05 min`, `12 min`), never days."""
    if value is None:
        return "–"
    minutes = round(value.total_seconds() / 60)
    hours, minutes = divmod(minutes, 60)
    if hours and minutes:
        return f"{hours} h {minutes:02d} min"
    if hours:
        return f"{hours} h"
    return f"{minutes} min"


def cell_text(key: str, value) -> str:
    if value is None:
        return "–"
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, float) and (key.endswith("_rate") or key == "load_ratio"):
        return f"{value * 100:.0f} %"
    return str(value)


def as_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, ensure_ascii=False)


def as_csv(report: Report, table: str) -> str:
    """One table; durations in seconds, rates as fractions (for spreadsheets and scripts)."""
    _, columns = TABLES[table]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([key for key, _ in columns])
    for row in getattr(report, table):
        values = []
        for key, _ in columns:
            value = row.get(key)
            if isinstance(value, timedelta):
                value = round(value.total_seconds())
            values.append("" if value is None else value)
        writer.writerow(values)
    return out.getvalue()


def as_text(report: Report) -> str:
    lines = [
        f"Calibration {report.period.label}"
        + (f" · market {report.market}" if report.market else "")
        + f" (timers that started {report.period.start:%Y-%m-%d} to "
        f"{report.period.end:%Y-%m-%d} UTC, exclusive)",
        "",
        "Findings",
    ]
    if report.findings:
        lines += [f"- {f.text}\n  ({f.figure})" for f in report.findings]
    else:
        t = report.thresholds
        lines.append(
            f"- none (breach rate ≥ {t['breach_rate_percent']} %, auto-reassignment ≥ "
            f"{t['reassign_rate_percent']} %, ignored messages ≥ {t['ignored_rate_percent']} %, "
            f"over at least {t['min_timers']} timers / {t['min_messages']} messages)"
        )
    for name, (title, columns) in TABLES.items():
        rows = getattr(report, name)
        lines += ["", title]
        if not rows:
            lines.append("  (nothing in this period)")
            continue
        table = [[header for _, header in columns]]
        table += [[cell_text(key, row.get(key)) for key, _ in columns] for row in rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
        for r in table:
            lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
    lines += [
        "",
        "Time to progress is business time on each timer's own clock (its market's hours and "
        "holidays, or the wall clock), pauses excluded. Breach rate = timers that reached the "
        "breach stage ÷ timers that ended or reached it.",
    ]
    return "\n".join(lines) + "\n"
