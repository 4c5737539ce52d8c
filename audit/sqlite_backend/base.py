"""Django's SQLite backend with one change: `flush` (test teardown, `manage.py flush`) lifts the
audit log's append-only triggers for its own `DELETE FROM` and puts them back, as TRUNCATE
passes PostgreSQL's row triggers; and its compilers are `leadops.db.compiler_sqlite`'s, as
PostgreSQL's are `leadops.db`'s. Everything else is Django's. Selected in settings for a
`sqlite://` DATABASE_URL."""

from __future__ import annotations

from django.db.backends.sqlite3 import base, operations

AUDIT_TABLE = "audit_auditevent"
TRIGGERS = {
    "audit_event_no_update": "UPDATE",
    "audit_event_no_delete": "DELETE",
}


def create_triggers_sql() -> list[str]:
    """The same refusal as the PostgreSQL trigger (audit/migrations/0002), one per operation."""
    return [
        f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {op} ON {AUDIT_TABLE} "
        f"BEGIN SELECT RAISE(ABORT, 'audit events are append-only ({op} refused)'); END;"
        for name, op in TRIGGERS.items()
    ]


def drop_triggers_sql() -> list[str]:
    return [f"DROP TRIGGER IF EXISTS {name};" for name in TRIGGERS]


class DatabaseOperations(operations.DatabaseOperations):
    # Django's compilers with the kept single-row INSERT (`leadops.db.inserts`), as on PostgreSQL.
    compiler_module = "leadops.db.compiler_sqlite"

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = super().sql_flush(
            style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if AUDIT_TABLE not in tables:
            return statements
        return [*drop_triggers_sql(), *statements, *create_triggers_sql()]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
