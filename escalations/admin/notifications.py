"""The notification outbox, read-only."""

from __future__ import annotations

from django.contrib import admin

from escalations.models import Notification
from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ScopedAdminMixin,
    lead_link,
    local_html,
    team_filter,
)


@admin.register(Notification)
class NotificationAdmin(
    ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin
):
    team_path = "team"
    ordering = ("-id",)  # `created_at` has no index of its own
    list_display = (
        "created_local",
        "kind",
        "persona",
        "lead_col",
        "recipient",
        "status",
        "channel",
        "attempts",
        "next_attempt_local",
        "error_short",
    )
    list_filter = ("status", "channel", "kind", "persona", team_filter("team"))
    search_fields = ("lead__name", "lead__company", "destination", "dedupe_key", "provider_id")
    list_select_related = ("lead", "recipient", "team__market")
    readonly_fields = ("created_local", "next_attempt_local", "sent_local")

    def _tz(self, obj):
        return obj.team.market.timezone

    @admin.display(description="Created", ordering="created_at")
    def created_local(self, obj):
        return local_html(obj.created_at, self._tz(obj))

    @admin.display(description="Next attempt", ordering="next_attempt_at")
    def next_attempt_local(self, obj):
        if obj.status not in ("pending", "sending"):
            return "—"
        return local_html(obj.next_attempt_at, self._tz(obj))

    @admin.display(description="Sent")
    def sent_local(self, obj):
        return local_html(obj.sent_at, self._tz(obj))

    @admin.display(description="Lead", ordering="lead__name")
    def lead_col(self, obj):
        return lead_link(obj.lead)

    @admin.display(description="Last error")
    def error_short(self, obj):
        text = obj.last_error or ""
        return text if len(text) <= 80 else text[:79] + "…"
