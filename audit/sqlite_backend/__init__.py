"""Django's SQLite backend, keeping the audit log append-only below the ORM (see `base`)."""
