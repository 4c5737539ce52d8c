"""On SQLite too the database itself refuses UPDATE and DELETE of audit rows (PostgreSQL has its
trigger since 0002). `flush` lifts them for its own DELETE (audit.sqlite_backend). A later migration that makes SQLite
rebuild the audit table drops them with the old table: it must create them again
(tests/test_audit.py checks them on the fully migrated database)."""

from django.db import migrations

from audit.sqlite_backend.base import create_triggers_sql, drop_triggers_sql


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in create_triggers_sql():
            schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in drop_triggers_sql():
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_event_timer_started_at")]
    operations = [migrations.RunPython(forwards, backwards)]
