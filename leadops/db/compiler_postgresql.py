"""PostgreSQL's compilers, with the kept single-row INSERT (`leadops.db.inserts`)."""

from django.db.backends.postgresql import compiler

from leadops.db import inserts

SQLCompiler = compiler.SQLCompiler
SQLDeleteCompiler = compiler.SQLDeleteCompiler
SQLUpdateCompiler = compiler.SQLUpdateCompiler
SQLAggregateCompiler = compiler.SQLAggregateCompiler


class SQLInsertCompiler(inserts.SQLInsertCompiler, compiler.SQLInsertCompiler):
    pass
