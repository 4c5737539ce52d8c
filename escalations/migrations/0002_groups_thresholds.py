"""Groups `Ops managers` and `Team leads` with their model permissions, and the default
thresholds row (80 / 100 / 150 %)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

OPS_MANAGER_PERMS = {
    "teams": {"market": "avcd", "team": "avcd", "rep": "avcd", "timeoff": "avcd"},
    "leadops": {"source": "avcd", "lead": "avc", "activity": "av"},
    "escalations": {"slapolicy": "avcd", "slathresholds": "vc", "slatimer": "vc",
                    "reassignment": "vc", "notification": "v"},
    "audit": {"auditevent": "v"},
}
TEAM_LEAD_PERMS = {
    "teams": {"market": "v", "team": "v", "rep": "v", "timeoff": "avcd"},
    "leadops": {"source": "v", "lead": "vc", "activity": "av"},
    "escalations": {"slapolicy": "v", "slathresholds": "v", "slatimer": "v",
                    "reassignment": "vc", "notification": "v"},
    "audit": {"auditevent": "v"},
}
ACTIONS = {"a": "add", "v": "view", "c": "change", "d": "delete"}


def _codenames(spec):
    for app_label, models in spec.items():
        for model, letters in models.items():
            for letter in letters:
                yield app_label, f"{ACTIONS[letter]}_{model}"
            if "v" in letters:
                yield app_label, f"view_historical{model}"


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, spec in (("Ops managers", OPS_MANAGER_PERMS), ("Team leads", TEAM_LEAD_PERMS)):
        group, _ = Group.objects.get_or_create(name=name)
        perms = []
        for app_label, codename in _codenames(spec):
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)


def create_thresholds(apps, schema_editor):
    SlaThresholds = apps.get_model("escalations", "SlaThresholds")
    SlaThresholds.objects.get_or_create(
        pk=1, defaults={"warn_percent": 80, "breach_percent": 100, "reassign_percent": 150}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("escalations", "0001_initial"),
        ("teams", "0001_initial"),
        ("leadops", "0001_initial"),
        ("audit", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_groups, migrations.RunPython.noop),
        migrations.RunPython(create_thresholds, migrations.RunPython.noop),
    ]
