"""The audit log is append-only: no update or delete through the ORM (or the database on
PostgreSQL), and `record` refuses to run outside the transaction of the change."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audit import log
from audit.models import AuditEvent, AuditImmutableError


@pytest.fixture
def event(db):
    with transaction.atomic():
        return log.record("sla_warning", details={"why": "test"})


def test_saving_an_existing_event_is_refused(event):
    event.details = {"why": "rewritten"}
    with pytest.raises(AuditImmutableError):
        event.save()
    assert AuditEvent.objects.get(pk=event.pk).details == {"why": "test"}


def test_deleting_an_event_is_refused(event):
    with pytest.raises(AuditImmutableError):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda qs: qs.update(kind="sla_breach"),
        lambda qs: qs.delete(),
        lambda qs: AuditEvent.objects.bulk_update(list(qs), ["kind"]),
        lambda qs: AuditEvent.objects.update_or_create(pk=qs.first().pk, defaults={"kind": "x"}),
    ],
    ids=["update", "delete", "bulk_update", "update_or_create"],
)
def test_queryset_changes_are_refused(event, change):
    with pytest.raises(AuditImmutableError):
        change(AuditEvent.objects.filter(pk=event.pk))
    assert AuditEvent.objects.get(pk=event.pk).kind == "sla_warning"


def test_record_outside_a_transaction_is_a_bug(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        log.record("sla_warning")


def test_postgresql_itself_refuses_update_and_delete(event):
    if connection.vendor != "postgresql":
        pytest.skip("the trigger exists on PostgreSQL only")
    for sql in (
        "UPDATE audit_auditevent SET kind = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, kind="sla_warning").exists()


@pytest.mark.parametrize(
    "change",
    [
        lambda pk: AuditEvent._base_manager.filter(pk=pk).update(kind="sla_breach"),
        lambda pk: connection.cursor().execute(
            "UPDATE audit_auditevent SET kind = 'x' WHERE id = %s", [pk]
        ),
        lambda pk: connection.cursor().execute("DELETE FROM audit_auditevent WHERE id = %s", [pk]),
        lambda pk: connection.cursor().execute("DELETE FROM audit_auditevent"),
    ],
    ids=["base_manager_update", "raw_update", "raw_delete", "raw_delete_all"],
)
def test_the_database_itself_refuses_changes_below_the_orm(event, change):
    """SQLite and PostgreSQL alike: triggers, not only the ORM, keep the log append-only."""
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        change(event.pk)
    assert AuditEvent.objects.filter(pk=event.pk, kind="sla_warning").exists()


def test_flush_still_empties_the_log_and_keeps_the_triggers(transactional_db):
    """Test teardown and `manage.py flush` delete every row (TRUNCATE on PostgreSQL, a DELETE
    with the triggers lifted on SQLite); the triggers are back afterwards."""
    with transaction.atomic():
        event = log.record("sla_warning")
    call_command("flush", "--noinput", verbosity=0)
    assert not AuditEvent.objects.exists()
    with transaction.atomic():
        event = log.record("sla_warning")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute("DELETE FROM audit_auditevent WHERE id = %s", [event.pk])
