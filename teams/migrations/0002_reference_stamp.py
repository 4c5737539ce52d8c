"""The reference stamp (`teams.reference`): one row, changed by trigger with every write to the
markets, teams and reps (a rep's `last_assigned_at` alone excepted: routing writes it)."""

from django.db import migrations, models

from teams import reference

TABLES = {"teams_market": (), "teams_team": (), "teams_rep": ("last_assigned_at",)}


class Migration(migrations.Migration):
    dependencies = [
        ("teams", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReferenceStamp",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("stamp", models.CharField(max_length=36)),
            ],
        ),
        reference.triggers_operation(TABLES),
    ]
