"""Django's PostgreSQL backend with the kept single-row INSERT (see `base`)."""
