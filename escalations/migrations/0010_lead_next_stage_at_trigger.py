"""`Lead.next_stage_at` kept in step with the lead's open SLA timer by the database itself, the
one place every timer write passes (the lifecycle, the sweep's batched updates, reassignment,
org changes, bulk inserts): a trigger on the timer table. It copies the instant of the open
timer's next stage (pending: warning, warned: breach, breached: reassignment; past its last
stage: the breach instant, still the most urgent), NULL while paused, NULL when the timer ends.
A finished timer never speaks for the lead (a new open one may exist). Same rule on PostgreSQL
and SQLite; `escalations.planning.next_stage_at` is the Python twin the tests compare with."""

from django.db import migrations

TABLE = "escalations_slatimer"
COLUMNS = "stage, paused_at, completed_at, warn_at, due_at, reassign_at"
NEXT = """CASE
    WHEN NEW.completed_at IS NOT NULL OR NEW.paused_at IS NOT NULL THEN NULL
    WHEN NEW.stage = 'pending' THEN NEW.warn_at
    WHEN NEW.stage = 'warned' THEN NEW.due_at
    WHEN NEW.stage = 'breached' THEN NEW.reassign_at
    ELSE NEW.due_at
END"""

POSTGRES = f"""
CREATE OR REPLACE FUNCTION lead_next_stage_at_sync() RETURNS trigger AS $$
BEGIN
    UPDATE leadops_lead SET next_stage_at = {NEXT}
     WHERE id = NEW.lead_id AND next_stage_at IS DISTINCT FROM {NEXT};
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER lead_next_stage_at_on_insert AFTER INSERT ON {TABLE}
    FOR EACH ROW WHEN (NEW.completed_at IS NULL) EXECUTE FUNCTION lead_next_stage_at_sync();
CREATE TRIGGER lead_next_stage_at_on_update AFTER UPDATE OF {COLUMNS} ON {TABLE}
    FOR EACH ROW WHEN (OLD.completed_at IS NULL) EXECUTE FUNCTION lead_next_stage_at_sync();
"""
POSTGRES_DROP = f"""
DROP TRIGGER IF EXISTS lead_next_stage_at_on_insert ON {TABLE};
DROP TRIGGER IF EXISTS lead_next_stage_at_on_update ON {TABLE};
DROP FUNCTION IF EXISTS lead_next_stage_at_sync();
"""
SQLITE = [
    f"""CREATE TRIGGER lead_next_stage_at_on_insert AFTER INSERT ON {TABLE}
    FOR EACH ROW WHEN NEW.completed_at IS NULL
    BEGIN UPDATE leadops_lead SET next_stage_at = {NEXT} WHERE id = NEW.lead_id; END""",
    f"""CREATE TRIGGER lead_next_stage_at_on_update AFTER UPDATE OF {COLUMNS} ON {TABLE}
    FOR EACH ROW WHEN OLD.completed_at IS NULL
    BEGIN UPDATE leadops_lead SET next_stage_at = {NEXT} WHERE id = NEW.lead_id; END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS lead_next_stage_at_on_insert",
    "DROP TRIGGER IF EXISTS lead_next_stage_at_on_update",
]
# Leads that have an open timer already (NEW: the open timer's row).
BACKFILL = f"""
UPDATE leadops_lead SET next_stage_at = (
    SELECT {NEXT.replace("NEW.", "t.")} FROM {TABLE} t
     WHERE t.lead_id = leadops_lead.id AND t.completed_at IS NULL
)
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES, params=None)
    else:
        for statement in SQLITE:
            schema_editor.execute(statement, params=None)
    schema_editor.execute(BACKFILL, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP, params=None)
    else:
        for statement in SQLITE_DROP:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("escalations", "0009_timer_open_stage"),
        ("leadops", "0004_lead_next_stage_and_email_index"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
