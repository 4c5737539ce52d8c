"""Activities, read-only: they are recorded through the lifecycle ("Log activity" on a lead,
Slack, the link page, the API)."""

from __future__ import annotations

from django.contrib import admin

from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ScopedAdminMixin,
    local_html,
    team_filter,
)
from leadops.models import Activity


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """Read-only: activities are recorded through the lifecycle ("Log activity" on a lead)."""

    team_path = "lead__team"
    ordering = ("-id",)  # `occurred_at` is indexed only per lead
    list_display = ("occurred_local", "kind", "lead", "actor_name", "counted_as_progress", "reason")
    list_filter = ("kind", "counted_as_progress", team_filter("lead__team"))
    search_fields = ("lead__name", "lead__company", "actor_name")
    list_select_related = ("lead__market",)
    fields = (
        "lead",
        "kind",
        "occurred_local",
        "recorded_local",
        "actor_name",
        "counted_as_progress",
        "reason",
        "notes",
    )
    readonly_fields = ("occurred_local", "recorded_local")

    @admin.display(description="Occurred", ordering="occurred_at")
    def occurred_local(self, obj):
        return local_html(obj.occurred_at, obj.lead.market.timezone)

    @admin.display(description="Recorded")
    def recorded_local(self, obj):
        return local_html(obj.recorded_at, obj.lead.market.timezone)
