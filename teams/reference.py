"""Reference data kept per process while the database says it has not changed.

Markets, teams, reps, sources, SLA policies and thresholds, and who an API caller is (token,
user, permissions, scope) change a few times a day but are read on every API request. Every
write to their tables changes one stamp (`ReferenceStamp`, by database trigger: whatever writes,
the admin, the org file, a shell, another process). Inside `snapshot()` a request reads the
stamp once (one small query) and each `cached()` lookup is answered from this process's memory
when it was loaded under the same stamp, or loaded and kept otherwise. Outside `snapshot()`
`cached()` simply loads: the sweep, the admin and the tests read the database as before.

Stamps are random (never a counter): a rolled-back write restores the old stamp, under which
the old values are right again. What `cached()` keeps is shared by the process's threads and
must be treated as read-only (never saved)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable

from django.db import connection, migrations

TABLE = "teams_referencestamp"
_local = threading.local()
_kept: dict[str, dict] = {}  # stamp -> {key: value}; only the newest stamp is kept
_MISSING = object()


def current_stamp() -> str | None:
    """The database's stamp now; None before any reference write since the table was emptied
    (nothing is kept then)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT stamp FROM {TABLE} WHERE id = 1")
        row = cursor.fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def snapshot():
    """Answer `cached()` lookups in the block from memory kept under the database's stamp."""
    outer = getattr(_local, "values", None)
    if outer is not None:  # nested: the outer snapshot holds
        yield
        return
    stamp = current_stamp()
    if stamp is None:
        yield
        return
    values = _kept.get(stamp)
    if values is None:
        values = {}
        _kept.clear()
        _kept[stamp] = values
    _local.values = values
    try:
        yield
    finally:
        _local.values = None


def cached(key: tuple, load: Callable[[], object]):
    """`load()`, or what it returned under the current snapshot's stamp."""
    values = getattr(_local, "values", None)
    if values is None:
        return load()
    found = values.get(key, _MISSING)
    if found is _MISSING:
        found = values[key] = load()
    return found


# --- the triggers (used by migrations) -----------------------------------------------------------

POSTGRES_FUNCTION = f"""
CREATE OR REPLACE FUNCTION reference_stamp_bump() RETURNS trigger AS $$
BEGIN
    INSERT INTO {TABLE} (id, stamp) VALUES (1, gen_random_uuid()::text)
    ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
SQLITE_BUMP = f"INSERT OR REPLACE INTO {TABLE} (id, stamp) VALUES (1, lower(hex(randomblob(16))));"


def _columns(schema_editor, table: str, ignored: Iterable[str]) -> list[str]:
    with schema_editor.connection.cursor() as cursor:
        description = schema_editor.connection.introspection.get_table_description(cursor, table)
    return [c.name for c in description if c.name not in set(ignored)]


def create_triggers(schema_editor, table: str, *, ignored: Iterable[str] = ()) -> None:
    """Triggers on `table` that change the stamp on every insert, delete and update; an update
    that sets only `ignored` columns (a rep's `last_assigned_at`, a user's `last_login`: written
    by routing and logins, read by no cached lookup) leaves it. A column added to `table` later
    needs the triggers made again (`drop_triggers`, then this)."""
    ignored = tuple(ignored)
    name = f"reference_stamp_{table}"
    of = f" OF {', '.join(_columns(schema_editor, table, ignored))}" if ignored else ""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        schema_editor.execute(
            f"CREATE TRIGGER {name}_write AFTER INSERT OR DELETE OR UPDATE{of} ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION reference_stamp_bump()",
            params=None,
        )
        schema_editor.execute(
            f"CREATE TRIGGER {name}_truncate AFTER TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION reference_stamp_bump()",
            params=None,
        )
        return
    for event in ("INSERT", "DELETE", f"UPDATE{of}"):
        suffix = event.split()[0].lower()
        schema_editor.execute(
            f"CREATE TRIGGER {name}_{suffix} AFTER {event} ON {table} "
            f"FOR EACH ROW BEGIN {SQLITE_BUMP} END",
            params=None,
        )


def drop_triggers(schema_editor, table: str) -> None:
    name = f"reference_stamp_{table}"
    if schema_editor.connection.vendor == "postgresql":
        for suffix in ("write", "truncate"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix} ON {table}", None)
        return
    for suffix in ("insert", "delete", "update"):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}", params=None)


def triggers_operation(tables: dict[str, tuple[str, ...]]) -> migrations.RunPython:
    """A migration's step making the triggers on `tables` (table -> the columns whose update
    alone leaves the stamp), and unmaking them backwards."""

    def forwards(apps, schema_editor):
        for table, ignored in tables.items():
            create_triggers(schema_editor, table, ignored=ignored)

    def backwards(apps, schema_editor):
        for table in tables:
            drop_triggers(schema_editor, table)

    return migrations.RunPython(forwards, backwards)
