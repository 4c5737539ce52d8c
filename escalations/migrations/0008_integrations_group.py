"""The `Integrations` group (CRM, web forms, dialer, BI tools with API tokens): feeds leads in and
reads leads, activities, the audit log, notifications and reassignments. Ops managers get the
API write permissions too (feeding leads, loading the org file)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

INTEGRATIONS = "Integrations"
INTEGRATION_PERMS = [
    ("leadops", "feed_leads"),
    ("leadops", "view_lead"),
    ("leadops", "view_activity"),
    ("leadops", "view_source"),
    ("teams", "view_market"),
    ("teams", "view_team"),
    ("teams", "view_rep"),
    ("escalations", "view_reassignment"),
    ("escalations", "view_notification"),
    ("audit", "view_auditevent"),
]
OPS_MANAGER_EXTRA = [("leadops", "feed_leads"), ("escalations", "load_org")]


def _permissions(apps, pairs):
    Permission = apps.get_model("auth", "Permission")
    found = []
    for app_label, codename in pairs:
        perm = Permission.objects.filter(
            content_type__app_label=app_label, codename=codename
        ).first()
        if perm is None:
            raise RuntimeError(f"permission {app_label}.{codename} is missing")
        found.append(perm)
    return found


def create_group(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    integrations, _ = Group.objects.get_or_create(name=INTEGRATIONS)
    integrations.permissions.add(*_permissions(apps, INTEGRATION_PERMS))
    ops, _ = Group.objects.get_or_create(name="Ops managers")
    ops.permissions.add(*_permissions(apps, OPS_MANAGER_EXTRA))


def remove_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name=INTEGRATIONS).delete()
    ops = Group.objects.filter(name="Ops managers").first()
    if ops is not None:
        ops.permissions.remove(*_permissions(apps, OPS_MANAGER_EXTRA))


class Migration(migrations.Migration):
    dependencies = [
        ("escalations", "0007_api_permissions"),
        ("leadops", "0002_api_permissions"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
