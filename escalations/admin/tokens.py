"""API tokens (SPEC §12): issued and revoked by superusers and ops managers only. A token is never
edited; the list shows only the first characters of each key, the token's own page the whole key
(to copy it into the CRM). DRF's own admin, which this replaces, offered the Tokens section to
nobody but superusers and printed every key in the list."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.http import HttpResponseRedirect
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from escalations.permissions import is_ops_manager
from leadops.admin_kit import local_html

admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class ApiTokenAdmin(TokenAdmin):
    """DRF's token admin (rows linked by user id, so a key never appears in a URL), for ops."""

    list_display = ("user", "groups", "key_start", "created_local")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__email")

    def has_module_permission(self, request):
        return is_ops_manager(request.user)

    def has_view_permission(self, request, obj=None):
        return is_ops_manager(request.user)

    def has_add_permission(self, request):
        return is_ops_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_ops_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # issue a new one and delete the old one instead

    def get_fields(self, request, obj=None):
        return ("user",) if obj is None else ("user", "key", "created_local")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("user", "key", "created_local")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = (
                get_user_model()
                .objects.filter(is_active=True, auth_token__isnull=True)
                .order_by("username")
            )
            kwargs["help_text"] = (
                "An active user without a token. Put integrations (CRM, web forms, dialer) in "
                "the Integrations group: they may create leads and read every team's."
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="Created", ordering="created")
    def created_local(self, obj):
        return local_html(obj.created)

    @admin.display(description="Key")
    def key_start(self, obj) -> str:
        return f"{obj.key[:6]}…"

    @admin.display(description="Groups")
    def groups(self, obj) -> str:
        return ", ".join(g.name for g in obj.user.groups.all()) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("user__groups")

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(
            request, f"Token issued for {obj.user}. Copy the key now and keep it secret."
        )
        return HttpResponseRedirect(
            reverse("admin:authtoken_tokenproxy_change", args=[obj.user_id])
        )
