"""Ops managers deactivate SLA policies, they do not delete them (issue 11): the group loses
`delete_slapolicy`. Superusers keep the delete, with a reason, for a policy no timer ran on."""

from django.db import migrations


def _group_and_permission(apps):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="Ops managers").first()
    perm = Permission.objects.filter(
        content_type__app_label="escalations", codename="delete_slapolicy"
    ).first()
    return group, perm


def drop_delete(apps, schema_editor):
    group, perm = _group_and_permission(apps)
    if group is not None and perm is not None:
        group.permissions.remove(perm)


def restore_delete(apps, schema_editor):
    group, perm = _group_and_permission(apps)
    if group is not None and perm is not None:
        group.permissions.add(perm)


class Migration(migrations.Migration):
    dependencies = [("escalations", "0012_sweep_runs")]

    operations = [migrations.RunPython(drop_delete, restore_delete)]
