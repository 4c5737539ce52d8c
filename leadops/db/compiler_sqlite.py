"""SQLite's (Django's generic) compilers, with the kept single-row INSERT
(`leadops.db.inserts`)."""

from django.db.models.sql import compiler

from leadops.db import inserts

SQLCompiler = compiler.SQLCompiler
SQLDeleteCompiler = compiler.SQLDeleteCompiler
SQLUpdateCompiler = compiler.SQLUpdateCompiler
SQLAggregateCompiler = compiler.SQLAggregateCompiler
SQLInsertCompiler = inserts.SQLInsertCompiler
