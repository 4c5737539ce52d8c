"""The per-timer and per-message rows calibration reads are kept by the database from the log
(audit/timer_summary.py): whichever way events are written, the rows say what a GROUP BY over
the log would say, and flush empties them with the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q

from audit import calibration, log
from audit.models import AuditEvent, AuditKind, TimerMessage, TimerSummary
from audit.timer_summary import NEXT_STAGE_KINDS, SETTLED, SUMMARISED_KINDS, TIMER_KINDS
from tests.factories import make_lead

K = AuditKind
STARTED = datetime(2026, 11, 2, 9, tzinfo=UTC)
SUMMARY_COLUMNS = (
    "lead_id",
    "market_id",
    "source_id",
    "team_id",
    "state",
    "policy_id",
    "policy_version",
    "window",
    "n_timer",
    "n_settled",
    "n_breach",
    "n_met",
    "n_met_late",
    "n_cancelled",
    "n_auto",
    "n_revert",
    "n_no_candidate",
    "n_limit",
    "progress_elapsed",
    "met_at",
    "breach_at",
    "reassign_at",
)


def _event(lead, timer_id, kind, minutes, *, elapsed=None, details=None, started=STARTED):
    return log.build_values(
        kind,
        lead=lead,
        occurred_at=started + timedelta(minutes=minutes),
        recorded_at=started + timedelta(minutes=minutes),
        elapsed=elapsed,
        details=details,
    ) | {
        "timer_id": timer_id,
        "timer_started_at": started,
        "policy_id": 7,
        "policy_version": 2,
        "window": "1h",
        "state": "NEW",
    }


def _from_the_log() -> dict:
    """Each timer's figures recomputed from the log with the ORM (the report's first way)."""

    def n(condition):
        return Count("pk", filter=condition)

    rows = (
        AuditEvent.objects.filter(
            kind__in=SUMMARISED_KINDS, timer_id__isnull=False, timer_started_at__isnull=False
        )
        .order_by()
        .values("timer_started_at", "timer_id")
        .annotate(
            lead_id_=Min("lead_id"),
            market_id_=Min("lead__market_id"),
            source_id_=Min("lead__source_id"),
            team_id_=Min("team_id"),
            state_=Min("state"),
            policy_id_=Min("policy_id"),
            policy_version_=Min("policy_version"),
            window_=Min("window"),
            n_timer_=n(Q(kind__in=TIMER_KINDS)),
            n_settled_=n(Q(kind__in=SETTLED)),
            n_breach_=n(Q(kind=K.SLA_BREACH)),
            n_met_=n(Q(kind=K.SLA_MET, details__outcome="met")),
            n_met_late_=n(Q(kind=K.SLA_MET, details__outcome="met_late")),
            n_cancelled_=n(Q(kind=K.SLA_CANCELLED)),
            n_auto_=n(Q(kind=K.SLA_BREACH_AUTO_REASSIGN)),
            n_revert_=n(Q(kind=K.REASSIGNMENT_REVERTED)),
            n_no_candidate_=n(Q(kind=K.REASSIGN_NO_CANDIDATE)),
            n_limit_=n(Q(kind=K.REASSIGN_LIMIT_REACHED)),
            progress_elapsed_=Max("elapsed", filter=Q(kind=K.SLA_MET)),
            met_at_=Min("occurred_at", filter=Q(kind=K.SLA_MET)),
            breach_at_=Min("occurred_at", filter=Q(kind=K.SLA_BREACH)),
            reassign_at_=Min("occurred_at", filter=Q(kind__in=NEXT_STAGE_KINDS[1:])),
        )
    )
    return {
        (r["timer_started_at"], r["timer_id"]): {c: r[f"{c}_"] for c in SUMMARY_COLUMNS}
        for r in rows
    }


def _summaries() -> dict:
    return {
        (r["timer_started_at"], r["timer_id"]): {c: r[c] for c in SUMMARY_COLUMNS}
        for r in TimerSummary.objects.values("timer_started_at", "timer_id", *SUMMARY_COLUMNS)
    }


def test_every_way_of_writing_events_keeps_the_timer_rows_equal_to_the_log(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    other = make_lead(team=org.india_team, source=org.inbound_web, owner=org.asha)
    with transaction.atomic():  # one statement for many events (COPY on PostgreSQL)
        log.record_many(
            [
                _event(lead, 1, K.SLA_WARNING, 48),
                _event(lead, 1, K.NOTIFICATION_SENT, 49, details={"kind": "warning"}),
                _event(lead, 1, K.SLA_BREACH, 60),
                _event(lead, 1, K.SLA_BREACH, 61),
                _event(other, 2, K.SLA_MET, 30, elapsed=timedelta(minutes=30), details={}),
            ]
        )
    with transaction.atomic():  # then one event at a time, into rows that exist
        AuditEvent.objects.create(
            **_event(lead, 1, K.SLA_MET, 95, elapsed=timedelta(minutes=80))
            | {"details": {"outcome": "met_late"}}
        )
        AuditEvent.objects.create(
            **_event(lead, 1, K.SLA_MET, 90, elapsed=timedelta(minutes=70))
            | {"details": {"outcome": "met_late"}}
        )
        AuditEvent.objects.create(**_event(other, 2, K.REASSIGN_NO_CANDIDATE, 20))
        AuditEvent.objects.create(**_event(other, 3, K.SLA_BREACH_AUTO_REASSIGN, 40))
        AuditEvent.objects.create(**_event(other, 3, K.REASSIGNMENT_REVERTED, 41))
        AuditEvent.objects.create(**_event(other, 4, K.SLA_PAUSED, 5))  # not summarised
        log.record(K.SLA_WARNING, lead=lead)  # no timer: not summarised

    rows = _summaries()
    assert rows == _from_the_log()
    first = rows[(STARTED, 1)]
    assert (first["n_timer"], first["n_breach"], first["n_met_late"]) == (5, 2, 2)
    assert first["progress_elapsed"] == timedelta(minutes=80)
    assert first["met_at"] == STARTED + timedelta(minutes=90)
    assert first["breach_at"] == STARTED + timedelta(minutes=60)
    assert first["market_id"] == lead.market_id and first["source_id"] == lead.source_id
    assert rows[(STARTED, 2)]["n_no_candidate"] == 1
    assert rows[(STARTED, 3)]["reassign_at"] == STARTED + timedelta(minutes=40)
    assert (STARTED, 4) not in rows


def test_notification_events_of_a_timer_become_narrow_message_rows(org):
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    with transaction.atomic():
        log.record_many(
            [
                _event(
                    lead,
                    1,
                    K.NOTIFICATION_SENT,
                    49,
                    details={"kind": "warning", "persona": "owner"},
                ),
                _event(lead, 1, K.NOTIFICATION_FAILED, 61, details={"kind": "breach"}),
            ]
        )
        log.record(K.NOTIFICATION_SENT, lead=lead, details={"kind": "assigned"})  # no timer
    messages = list(
        TimerMessage.objects.order_by("occurred_at").values(
            "timer_id", "market_id", "team_id", "failed", "persona", "message_kind"
        )
    )
    assert messages == [
        {
            "timer_id": 1,
            "market_id": lead.market_id,
            "team_id": lead.team_id,
            "failed": False,
            "persona": "owner",
            "message_kind": "warning",
        },
        {
            "timer_id": 1,
            "market_id": lead.market_id,
            "team_id": lead.team_id,
            "failed": True,
            "persona": None,
            "message_kind": "breach",
        },
    ]


def test_flush_empties_the_derived_rows_and_keeps_their_triggers(transactional_db):
    with transaction.atomic():
        log.record_many([_event(None, 1, K.SLA_WARNING, 48)])
    assert TimerSummary.objects.exists()
    call_command("flush", "--noinput", verbosity=0)
    assert not TimerSummary.objects.exists() and not AuditEvent.objects.exists()
    with transaction.atomic():
        log.record_many([_event(None, 1, K.SLA_WARNING, 48)])
    assert TimerSummary.objects.get().n_timer == 1


@pytest.mark.parametrize("table", ["audit_timersummary", "audit_timermessage"])
def test_the_derived_tables_are_not_in_the_append_only_rule(db, table):
    """Derived data: the log's refusal of UPDATE and DELETE is for the events only."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")


def test_percentiles_are_the_nearest_rank_over_many_values_with_ties_across_minutes(org):
    """The report's p50/p90 (minute buckets on PostgreSQL, window functions on SQLite) are the
    values at rank ceil(n × p) of the sorted values, ties and minute edges included."""
    lead = make_lead(team=org.berlin_team, source=org.paid_social, owner=org.lena)
    seconds = [60, 7, 59, 60, 120, 61, 119.5, 120, 7, 3600, 59.999, 86_400, 120, 60.001, 7]
    elapsed = [timedelta(seconds=s) for s in seconds * 3]
    written = 0
    for n in (1, 2, 3, 4, 5, 10, 11, 20, 45):
        with transaction.atomic():
            log.record_many(
                [
                    _event(lead, i, K.SLA_MET, 5, elapsed=elapsed[i], details={"outcome": "met"})
                    for i in range(written, n)
                ]
            )
        written = n
        (row,) = calibration.build_report(
            calibration.quarter("2026Q4"), now=STARTED
        ).progress_by_state
        ranked = sorted(elapsed[:n])
        assert row["progressed"] == n
        assert row["p50_to_progress"] == ranked[calibration.nearest_rank(n, 50) - 1], n
        assert row["p90_to_progress"] == ranked[calibration.nearest_rank(n, 90) - 1], n
