"""Fast inserts of many rows given as dicts (attname -> Python value), for the sweep's hot path.

Django's `bulk_create` builds a model instance per row and compiles every value through the
field machinery; at thousands of audit and outbox rows per second that is most of the cost.
Here each column gets one adapter chosen once per call, rows go to PostgreSQL with COPY (or a
multi-row INSERT … ON CONFLICT DO NOTHING when duplicates must be ignored) and to SQLite with
`executemany`. Only plain column types are supported; anything else raises."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

_SMALL = 20  # up to this many rows a plain INSERT beats the COPY round trips


def _json(value):
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder)


def _adapter(field: models.Field) -> Callable | None:
    """How to turn a Python value into what the driver takes (None: as it is)."""
    kind = field.get_internal_type()
    vendor = connection.vendor
    if kind == "JSONField":
        return _json
    if kind == "DateTimeField":
        if vendor == "sqlite":
            return lambda v: None if v is None else connection.ops.adapt_datetimefield_value(v)
        return None
    if kind == "DurationField":
        if vendor == "sqlite":
            from django.utils.duration import duration_microseconds

            return lambda v: None if v is None else duration_microseconds(v)
        return None
    if kind in ("UUIDField",):
        if vendor == "sqlite":
            return lambda v: None if v is None else v.hex
        return None
    if kind in (
        "CharField",
        "TextField",
        "SlugField",
        "EmailField",
        "URLField",
        "BooleanField",
        "IntegerField",
        "BigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "ForeignKey",
        "BigAutoField",
        "AutoField",
    ):
        return None
    raise TypeError(f"insert_rows does not handle {kind} ({field.name})")


def allocate_ids(model, count: int) -> list[int]:
    """Reserve `count` primary keys, so rows can be written with COPY and still be referred to.
    PostgreSQL: from the table's identity sequence. SQLite: above both the highest id and the
    AUTOINCREMENT counter; safe because SQLite has one writer and our transactions start
    IMMEDIATE (the write lock is held from BEGIN)."""
    table = model._meta.db_table
    column = model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, column, count],
            )
            return [row[0] for row in cursor.fetchall()]
        quoted = connection.ops.quote_name(table)
        cursor.execute(
            f"SELECT MAX(COALESCE((SELECT MAX({connection.ops.quote_name(column)}) FROM {quoted}),"
            " 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0))",
            [table],
        )
        start = cursor.fetchone()[0] + 1
        return list(range(start, start + count))


def insert_instances(model, objs: list) -> None:
    """Insert unsaved model instances quickly; each gets its primary key (see allocate_ids).
    Like bulk_create without signals and without Django's per-value compilation."""
    if not objs:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("insert_instances needs a transaction (ids are reserved in it)")
    for obj, pk in zip(objs, allocate_ids(model, len(objs)), strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    fields = model._meta.concrete_fields
    insert_rows(
        model,
        [{f.attname: getattr(obj, f.attname) for f in fields} for obj in objs],
        include_pk=True,
    )


def insert_rows(
    model, rows: list[dict], *, ignore_conflicts: bool = False, include_pk: bool = False
) -> None:
    """Insert rows (dicts keyed by attname; missing columns take the field default)."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if include_pk or not f.primary_key]
    columns = [f.column for f in fields]
    getters = [(f.attname, _adapter(f)) for f in fields]
    # Columns the rows leave out take the field's default, computed once for the whole call.
    missing = {
        f.attname: f.get_default() if f.has_default() else None
        for f in fields
        if f.attname not in rows[0]
    }
    if missing:
        rows = [{**missing, **row} for row in rows]
    values = [
        tuple(row[name] if adapt is None else adapt(row[name]) for name, adapt in getters)
        for row in rows
    ]
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not ignore_conflicts:
            with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        elif connection.vendor == "postgresql" and len(values) <= _SMALL:
            row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
            cursor.execute(
                f"INSERT INTO {table} ({quoted}) VALUES "
                + ", ".join([row_sql] * len(values))
                + " ON CONFLICT DO NOTHING",
                [item for value in values for item in value],
            )
        elif connection.vendor == "postgresql":
            # COPY into a per-connection staging table, then one INSERT … SELECT that skips
            # duplicates: as fast as COPY, with ON CONFLICT semantics.
            stage = connection.ops.quote_name(f"stage_{model._meta.db_table}")
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                f"SELECT {quoted} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY {stage} ({quoted}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            cursor.execute(
                f"INSERT INTO {table} ({quoted}) SELECT {quoted} FROM {stage} "
                "ON CONFLICT DO NOTHING"
            )
            cursor.execute(f"TRUNCATE {stage}")
        else:
            verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"{verb} INTO {table} ({quoted}) VALUES ({placeholders})", values)


def update_by_pk(model, attname: str, values: dict, **same_for_all) -> int:
    """Set one column to a different value per row (`{pk: value}`) in one UPDATE with a CASE,
    plus columns that get the same value everywhere. Plain values only (ids, text, numbers)."""
    if not values:
        return 0
    ops = connection.ops
    table = ops.quote_name(model._meta.db_table)
    field = model._meta.get_field(attname)
    pk = ops.quote_name(model._meta.pk.column)
    cases = " ".join(["WHEN %s THEN %s"] * len(values))
    params = [item for pair in values.items() for item in pair]
    sets = [f"{ops.quote_name(field.column)} = CASE {pk} {cases} END"]
    for name, value in same_for_all.items():
        other = model._meta.get_field(name)
        sets.append(f"{ops.quote_name(other.column)} = %s")
        params.append(other.get_db_prep_save(value, connection))
    placeholders = ", ".join(["%s"] * len(values))
    params += list(values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {', '.join(sets)} WHERE {pk} IN ({placeholders})", params
        )
        return cursor.rowcount


def update_columns_by_pk(model, rows: dict, **same_for_all) -> int:
    """Like `update_by_pk` for several columns: `{pk: {attname: value}}` (every row naming the
    same columns) in one UPDATE with a CASE per column, plus columns with one value for all.
    Values go through each field's `get_db_prep_save` (datetimes on SQLite, for one)."""
    if not rows:
        return 0
    ops = connection.ops
    meta = model._meta
    pk = ops.quote_name(meta.pk.column)
    names = list(next(iter(rows.values())))
    sets, params = [], []
    for name in names:
        field = meta.get_field(name)
        sets.append(
            f"{ops.quote_name(field.column)} = CASE {pk} "
            + " ".join(["WHEN %s THEN %s"] * len(rows))
            + " END"
        )
        for key, values in rows.items():
            params += [key, field.get_db_prep_save(values[name], connection)]
    for name, value in same_for_all.items():
        field = meta.get_field(name)
        sets.append(f"{ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    params += list(rows)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ops.quote_name(meta.db_table)} SET {', '.join(sets)} "
            f"WHERE {pk} IN ({', '.join(['%s'] * len(rows))})",
            params,
        )
        return cursor.rowcount
