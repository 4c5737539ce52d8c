"""SLA timers, read-only, with the re-plan action (`escalations.timers.replan_timers`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from escalations.models import SlaPolicy, SlaTimer
from escalations.timers import replan_timers
from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ScopedAdminMixin,
    duration_text,
    lead_link,
    local_column,
    market_filter,
    reason_action,
    sla_status_html,
    team_filter,
    user_scope,
)


class OpenTimerFilter(admin.SimpleListFilter):
    title = "open or completed"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return (("yes", "open"), ("no", "completed"))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(completed_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(completed_at__isnull=False)
        return queryset


class PolicyFilter(admin.SimpleListFilter):
    """Like a related-field filter, but without one query per policy for its label."""

    title = "policy"
    parameter_name = "policy__id__exact"

    def lookups(self, request, model_admin):
        policies = user_scope(request).filter_markets(
            SlaPolicy.objects.select_related("market", "source"), "market", shared=True
        )
        return [(str(p.pk), str(p)) for p in policies]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(policy_id=self.value())
        return queryset


def _local(field: str, description: str):
    return local_column(field, description, lambda timer: timer.lead.market.timezone)


@admin.register(SlaTimer)
class SlaTimerAdmin(ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """Read-only; the re-plan action goes through `escalations.timers.replan_timers`."""

    team_path = "lead__team"
    # Newest first by primary key: `started_at` has no index of its own, a sort over millions of
    # timers would be slow; ids grow with start time.
    ordering = ("-id",)
    list_display = (
        "lead_col",
        "state",
        "owner",
        "status",
        "warn_local",
        "due_local",
        "reassign_local",
        "next_fire_local",
        "outcome",
        "policy_col",
    )
    list_filter = (
        OpenTimerFilter,
        "stage",
        "state",
        "outcome",
        "clock",
        market_filter("lead__market"),
        team_filter("lead__team"),
        PolicyFilter,
    )
    search_fields = ("lead__name", "lead__company", "=lead__external_id", "owner__name")
    list_select_related = ("lead__market", "owner", "policy__market", "policy__source")
    actions = ["replan"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "lead",
                    "state",
                    "owner",
                    "stage",
                    "outcome",
                    "policy",
                    "policy_version",
                    "window",
                    "clock",
                    "thresholds",
                )
            },
        ),
        (
            "Instants (market local time)",
            {
                "fields": (
                    "started_local",
                    "warn_local",
                    "due_local",
                    "reassign_local",
                    "next_fire_local",
                    "completed_local",
                )
            },
        ),
        (
            "Clock",
            {
                "fields": (
                    "window_business_text",
                    "consumed_text",
                    "running_since_local",
                    "paused_local",
                    "resume_local",
                    "paused_total_text",
                )
            },
        ),
        (
            "Episode",
            {
                "fields": (
                    "episode",
                    "episode_owner_ids",
                    "auto_reassign_count",
                    "no_candidate_local",
                    "limit_reached_local",
                    "error_count",
                    "last_error",
                )
            },
        ),
    )
    readonly_fields = (
        "started_local",
        "warn_local",
        "due_local",
        "reassign_local",
        "next_fire_local",
        "completed_local",
        "window_business_text",
        "consumed_text",
        "running_since_local",
        "paused_local",
        "resume_local",
        "paused_total_text",
        "no_candidate_local",
        "limit_reached_local",
    )

    # One label style: what happens (or happened), no "at"; times in the lead's market zone.
    started_local = _local("started_at", "Started")
    warn_local = _local("warn_at", "Warning")
    due_local = _local("due_at", "Breach (due)")
    reassign_local = _local("reassign_at", "Reassignment")
    next_fire_local = _local("next_fire_at", "Next check")
    completed_local = _local("completed_at", "Completed")
    running_since_local = _local("running_since", "Running since")
    paused_local = _local("paused_at", "Paused")
    resume_local = _local("resume_at", "Resumes")
    no_candidate_local = _local("no_candidate_at", "Nobody available (recorded)")
    limit_reached_local = _local("limit_reached_at", "Reassignment limit reached")

    @admin.display(description="Used before running since (business)")
    def consumed_text(self, obj):
        return duration_text(obj.consumed)

    @admin.display(description="Paused in total")
    def paused_total_text(self, obj):
        return duration_text(obj.paused_total)

    @admin.display(description="Lead", ordering="lead__name")
    def lead_col(self, obj):
        return lead_link(obj.lead)

    @admin.display(description="Stage", ordering="stage")
    def status(self, obj):
        if obj.completed_at is not None:
            return format_html('<span style="color:#777">{}</span>', obj.get_stage_display())
        return sla_status_html(obj)

    @admin.display(description="Policy")
    def policy_col(self, obj):
        return format_html("{} (v{})", obj.policy, obj.policy_version)

    @admin.display(description="Window in business time")
    def window_business_text(self, obj):
        return duration_text(obj.window_business)

    def has_replan_permission(self, request):
        return request.user.has_perm("escalations.change_slatimer")

    @admin.action(description="Re-plan under the current policy version…", permissions=["replan"])
    def replan(self, request, queryset):
        def apply(chosen, reason):
            open_ids = list(chosen.filter(completed_at__isnull=True).values_list("pk", flat=True))
            skipped = chosen.count() - len(open_ids)
            changed = replan_timers(
                SlaTimer.objects.filter(pk__in=open_ids).only("pk"),
                actor=request.user,
                reason=reason,
            )
            text = (
                f"{changed} of {len(open_ids)} open timer(s) re-planned under the current "
                "policy version; the others already ran on it."
            )
            if skipped:
                text += f" {skipped} completed timer(s) left alone."
            self.message_user(request, text, messages.SUCCESS)

        return reason_action(
            self,
            request,
            queryset,
            title="Re-plan SLA timers",
            intro="Open timers move to the policy version that matches now; stages already "
            "fired stay fired and a shorter window can make a stage due at once.",
            submit="Re-plan",
            apply=apply,
        )
