"""Trigram indexes for the admin's lead search by a fragment of the name or the company
(PostgreSQL: pg_trgm; Django's `icontains` is UPPER(col::text) LIKE UPPER('%term%'), which a GIN
index on UPPER(col) with gin_trgm_ops serves). On SQLite nothing happens: search stays a scan."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = {
    "lead_name_trgm": "name",
    "lead_company_trgm": "company",
}


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, column in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON leadops_lead "
            f"USING gin (UPPER({column}) gin_trgm_ops)"
        )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("leadops", "0004_lead_next_stage_and_email_index")]
    operations = [
        TrigramExtension(),  # does nothing on SQLite
        migrations.RunPython(forwards, backwards),
    ]
