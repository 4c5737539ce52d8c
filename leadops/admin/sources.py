"""Lead sources (paid social, inbound web...): plain history-tracked rows."""

from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from leadops.admin_kit import NoHistoryRevertMixin, ScopedAdminMixin
from leadops.models import Source


@admin.register(Source)
class SourceAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    team_path = None  # reference rows every team reads alike
    list_display = ("code", "name")
    search_fields = ("code", "name")

    def save_model(self, request, obj, form, change):
        obj._change_reason = "edited in the admin"
        super().save_model(request, obj, form, change)
