"""The database backends the project runs on: Django's, with one change, single-row INSERT
statements built once per process (`inserts`). Selected in settings from `DATABASE_URL`."""
