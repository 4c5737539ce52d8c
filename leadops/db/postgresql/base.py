"""Django's PostgreSQL backend with one change: its compilers come from
`leadops.db.compiler_postgresql` (single-row INSERT statements built once per process,
`leadops.db.inserts`). Everything else is Django's. Selected in settings for a `postgres://`
DATABASE_URL."""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    compiler_module = "leadops.db.compiler_postgresql"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
