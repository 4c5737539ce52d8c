"""The audit log in the admin: read-only for everyone (no add, change or delete, not even for a
superuser), filtered to the team lead's team, exported as CSV (selected rows, or the whole
filtered list streamed)."""

from __future__ import annotations

import csv
import json
from datetime import UTC

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.admin_calibration import calibration_view, finding_rows_view
from audit.models import AuditEvent
from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ScopedAdminMixin,
    audit_summary,
    duration_text,
    local_html,
    local_text,
    team_filter,
)

CSV_COLUMNS = (
    "id",
    "occurred_at_utc",
    "occurred_at_local",
    "recorded_at_utc",
    "kind",
    "lead_id",
    "lead_label",
    "team_id",
    "state",
    "owner_id",
    "owner_name",
    "actor_name",
    "policy_id",
    "policy_version",
    "window",
    "elapsed_seconds",
    "stage_due_at_utc",
    "correlation_id",
    "details",
)


def _cell(value) -> str:
    # A spreadsheet runs a cell starting with = + - @ as a formula; lead names come from forms.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def csv_row(event: AuditEvent) -> list[str]:
    tz = event.team.market.timezone if event.team_id and event.team else "UTC"
    return [
        str(event.pk),
        _iso(event.occurred_at),
        local_text(event.occurred_at, tz),
        _iso(event.recorded_at),
        event.kind,
        event.lead_id or "",
        _cell(event.lead_label),
        event.team_id or "",
        event.state,
        event.owner_id or "",
        _cell(event.owner_name),
        _cell(event.actor_name),
        event.policy_id or "",
        event.policy_version or "",
        event.window,
        int(event.elapsed.total_seconds()) if event.elapsed is not None else "",
        _iso(event.stage_due_at),
        event.correlation_id,
        json.dumps(event.details or {}, sort_keys=True, default=str),
    ]


class _Echo:
    def write(self, value):
        return value


def csv_response(queryset, filename: str) -> StreamingHttpResponse:
    """Streamed, so that a large export neither holds every row in memory nor times out."""
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in queryset.iterator(chunk_size=2000):
            yield writer.writerow(csv_row(event))

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """The log is append-only: nobody adds, changes or deletes through the admin."""

    team_path = "team"
    list_display = (
        "occurred_local",
        "kind",
        "lead_col",
        "state",
        "owner_name",
        "actor_name",
        "policy_col",
        "stage_due_local",
        "summary",
    )
    list_filter = ("kind", ("occurred_at", admin.DateFieldListFilter), team_filter("team"))
    search_fields = ("lead_label",)
    list_select_related = ("team__market",)
    actions = ["export_csv"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "kind",
                    "occurred_local",
                    "recorded_local",
                    "actor_name",
                    "actor_user",
                    "correlation_id",
                )
            },
        ),
        ("Lead", {"fields": ("lead_col", "team", "state", "owner_name", "timer")}),
        (
            "SLA",
            {"fields": ("policy_col", "thresholds", "window", "elapsed_text", "stage_due_local")},
        ),
        ("Details", {"fields": ("details_pretty",)}),
    )
    readonly_fields = (
        "occurred_local",
        "recorded_local",
        "elapsed_text",
        "lead_col",
        "policy_col",
        "stage_due_local",
        "details_pretty",
    )

    def _tz(self, obj):
        # An event about the org (no team): the viewer's zone.
        return obj.team.market.timezone if obj.team_id and obj.team else None

    @admin.display(description="Occurred", ordering="occurred_at")
    def occurred_local(self, obj):
        return local_html(obj.occurred_at, self._tz(obj))

    @admin.display(description="Recorded")
    def recorded_local(self, obj):
        return local_html(obj.recorded_at, self._tz(obj))

    @admin.display(description="Elapsed (business)")
    def elapsed_text(self, obj):
        return duration_text(obj.elapsed)

    @admin.display(description="Stage due")
    def stage_due_local(self, obj):
        return local_html(obj.stage_due_at, self._tz(obj)) if obj.stage_due_at else "—"

    @admin.display(description="Lead", ordering="lead_label")
    def lead_col(self, obj):
        if not obj.lead_id:
            return obj.lead_label or "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:leadops_lead_change", args=[obj.lead_id]),
            obj.lead_label or f"lead {obj.lead_id}",
        )

    @admin.display(description="Policy")
    def policy_col(self, obj):
        return f"#{obj.policy_id} v{obj.policy_version}" if obj.policy_id else "—"

    @admin.display(description="Details")
    def summary(self, obj):
        return audit_summary(obj)

    @admin.display(description="Details")
    def details_pretty(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.details or {}, indent=2, sort_keys=True, default=str)
        )

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        return csv_response(
            queryset.select_related("team__market").order_by("occurred_at", "id"),
            "audit-events.csv",
        )

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="audit_auditevent_export",
            ),
            path(
                "calibration/",
                self.admin_site.admin_view(self.calibration_view),
                name="audit_auditevent_calibration",
            ),
            path(
                "calibration/rows/",
                self.admin_site.admin_view(self.finding_rows_view),
                name="audit_auditevent_calibration_rows",
            ),
            *super().get_urls(),
        ]

    def calibration_view(self, request):
        return calibration_view(self, request)

    def finding_rows_view(self, request):
        return finding_rows_view(self, request)

    def export_view(self, request):
        """The whole list as currently filtered and searched, oldest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(reverse("admin:audit_auditevent_changelist"))
        queryset = changelist.get_queryset(request).order_by("occurred_at", "id")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        return csv_response(queryset, f"audit-events-{stamp}.csv")
