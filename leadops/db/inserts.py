"""A new row's INSERT statement, its text built once per process.

`Model.save()` on a new instance asks the ORM's insert compiler for its SQL every time: the
quoted table and columns, one placeholder per field, the RETURNING clause; on the API's intake
path that was a tenth of the server's CPU per lead created (three inserts: the lead, its history
row, its timer). For one row whose values are plain (no expression such as `Now()` or a database
default, no field that makes its own placeholder) the text depends only on the model, the fields
written and the columns returned, so it is kept; each row still has its values prepared by its
fields as before (`pre_save`, `get_db_prep_save`). Anything else goes through Django unchanged."""

from __future__ import annotations

from django.db.models.sql import compiler

# (database alias, model, fields written, fields returned) -> (statement, returning params)
_STATEMENTS: dict[tuple, tuple[str, tuple]] = {}


class SQLInsertCompiler(compiler.SQLInsertCompiler):
    """Mixed into a backend's own insert compiler (`leadops.db.*.compiler`)."""

    def as_sql(self):
        key = self._statement_key()
        if key is None:
            return super().as_sql()
        kept = _STATEMENTS.get(key)
        if kept is None:
            statements = super().as_sql()
            sql, params = statements[0]
            if len(statements) == 1 and len(params) == len(self.query.fields) + len(
                self.returning_params
            ):
                _STATEMENTS[key] = (sql, tuple(self.returning_params))
            return statements
        sql, self.returning_params = kept
        obj = self.query.objs[0]
        values = [self.prepare_value(f, self.pre_save_val(f, obj)) for f in self.query.fields]
        return [(sql, (*values, *self.returning_params))]

    def _statement_key(self) -> tuple | None:
        """The cache key of this insert, or None when its text may depend on its values."""
        query = self.query
        if len(query.objs) != 1 or not query.fields or query.on_conflict:
            return None
        obj = query.objs[0]
        for field in query.fields:
            if hasattr(field, "get_placeholder"):
                return None
            if hasattr(getattr(obj, field.attname, None), "resolve_expression"):
                return None
        return (self.using, query.model, tuple(query.fields), tuple(self.returning_fields or ()))
