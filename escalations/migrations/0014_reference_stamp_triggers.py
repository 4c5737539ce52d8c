"""The reference stamp's triggers (`teams.reference`) on what the API keeps in memory besides
the org: sources, SLA policies and thresholds, and who a caller is (users, groups, permissions,
tokens; a user's `last_login` alone excepted: every admin sign-in writes it)."""

from django.db import migrations

from teams import reference

TABLES = {
    "leadops_source": (),
    "escalations_slapolicy": (),
    "escalations_slathresholds": (),
    "auth_user": ("last_login",),
    "auth_user_groups": (),
    "auth_user_user_permissions": (),
    "auth_group": (),
    "auth_group_permissions": (),
    "auth_permission": (),
    "authtoken_token": (),
}


class Migration(migrations.Migration):
    dependencies = [
        ("escalations", "0013_ops_managers_deactivate_policies"),
        ("teams", "0002_reference_stamp"),
        ("leadops", "0006_lead_on_hold_next_stage"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]
    operations = [reference.triggers_operation(TABLES)]
