"""The audit log is append-only: no update or delete through the ORM (or the database on
PostgreSQL), and `record` refuses to run outside the transaction of the change."""

from __future__ import annotations

import pytest
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
