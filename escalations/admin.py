"""The policy console (SPEC §10): SLA policies with a required change reason and the matrix view,
the thresholds, read-only timers with a re-plan action, reassignments with revert, and the
notification outbox. Every state change goes through `escalations.timers` / `.reassign`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import path, reverse
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from escalations import admin_views, org_changes
from escalations.admin_helpers import (
    LargeTableAdminMixin,
    NoHistoryRevertMixin,
    ScopedAdminMixin,
    duration_text,
    local_html,
    local_text,
    reason_action,
    sla_status_html,
    team_filter,
    user_scope,
)
from escalations.models import (
    Notification,
    Reassignment,
    SlaPolicy,
    SlaThresholds,
    SlaTimer,
)
from escalations.permissions import NotAllowed, check_can_revert
from teams.admin_forms import ChangeReasonMixin


def lead_link(lead):
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:leadops_lead_change", args=[lead.pk]), lead
    )


# --- policies ------------------------------------------------------------------------------------


class SlaPolicyForm(ChangeReasonMixin, forms.ModelForm):
    change_reason_required = True

    class Meta:
        model = SlaPolicy
        fields = ["state", "market", "source", "window", "clock", "active"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(NoHistoryRevertMixin, SimpleHistoryAdmin):
    form = SlaPolicyForm
    list_display = (
        "state",
        "market_or_any",
        "source_or_any",
        "window",
        "clock",
        "active",
        "version",
        "scope",
        "running_timers",
        "updated_at",
    )
    list_filter = ("state", "market", "source", "clock", "active")
    search_fields = ("window", "market__code", "market__name", "source__code", "source__name")
    list_select_related = ("market", "source")
    readonly_fields = ("version", "updated_at")
    fieldsets = (
        (
            None,
            {
                "fields": ("state", "market", "source"),
                "description": "The most specific active match wins: market + source > market > "
                "source > default. Empty market or source = any.",
            },
        ),
        ("Window", {"fields": ("window", "clock", "active")}),
        ("Why", {"fields": ("change_reason",)}),
        ("Version", {"fields": ("version", "updated_at")}),
    )
    actions = ["deactivate_selected"]

    def get_queryset(self, request):
        running = (
            SlaTimer.objects.filter(policy=OuterRef("pk"), completed_at__isnull=True)
            .order_by()
            .values("policy")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(running=Coalesce(Subquery(running, output_field=IntegerField()), 0))
        )

    @admin.display(description="Market", ordering="market__code")
    def market_or_any(self, obj):
        return obj.market.code if obj.market_id else "any"

    @admin.display(description="Source", ordering="source__code")
    def source_or_any(self, obj):
        return obj.source.code if obj.source_id else "any"

    @admin.display(description="Scope")
    def scope(self, obj):
        return admin_views.SCOPE_LABELS[obj.specificity]

    @admin.display(description="Open timers", ordering="running")
    def running_timers(self, obj):
        url = reverse("admin:escalations_slatimer_changelist")
        return format_html(
            '<a href="{}?policy__id__exact={}&open=yes">{}</a>', url, obj.pk, obj.running
        )

    def get_urls(self):
        return [
            path(
                "matrix/",
                self.admin_site.admin_view(self.matrix_view),
                name="escalations_slapolicy_matrix",
            ),
            *super().get_urls(),
        ]

    def matrix_view(self, request):
        return admin_views.policy_matrix_view(self, request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes would skip the change reason
        return actions

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data["change_reason"]
        was_active = (
            SlaPolicy.objects.filter(pk=obj.pk).values_list("active", flat=True).first()
            if change
            else None
        )
        result = org_changes.save_policy(obj, actor=request.user, reason=reason)
        if change and was_active and not obj.active:
            self.message_user(
                request,
                f"Policy deactivated: {result.cancelled} open timer(s) cancelled; the policy that "
                "matches now (if any) started a fresh timer for each of those leads.",
                messages.SUCCESS,
            )
        elif not change:
            self.message_user(
                request,
                "Leads already waiting keep the timers they started with; new timers use the "
                "most specific active policy, now possibly this one (see the matrix).",
                messages.INFO,
            )
        elif change and {"window", "clock"} & set(form.changed_data):
            running = SlaTimer.objects.filter(policy=obj, completed_at__isnull=True).count()
            if running:
                self.message_user(
                    request,
                    f"{running} open timer(s) keep the version they started with; use "
                    "“Re-plan under the current policy version” on SLA timers to apply "
                    f"v{obj.version} to them.",
                    messages.INFO,
                )

    @admin.action(description="Deactivate selected policies…", permissions=["change"])
    def deactivate_selected(self, request, queryset):
        def apply(chosen, reason):
            total = cancelled = 0
            for policy in chosen.filter(active=True):
                result = org_changes.set_policy_active(
                    policy, False, actor=request.user, reason=reason
                )
                cancelled += result.cancelled
                total += 1
            self.message_user(
                request,
                f"{total} policy(ies) deactivated, {cancelled} open timer(s) cancelled.",
                messages.SUCCESS,
            )

        return reason_action(
            self,
            request,
            queryset,
            title="Deactivate SLA policies",
            intro="Their open timers are cancelled (audited) and the policy that matches now, "
            "if any, starts a fresh timer.",
            submit="Deactivate",
            apply=apply,
        )


class SlaThresholdsForm(ChangeReasonMixin, forms.ModelForm):
    change_reason_required = True

    class Meta:
        model = SlaThresholds
        fields = ["warn_percent", "reassign_percent"]
        help_texts = {
            "warn_percent": "Percent of the window at which the owner is warned (1–99).",
            "reassign_percent": "Percent of the window at which the lead is reassigned (> 100).",
        }


@admin.register(SlaThresholds)
class SlaThresholdsAdmin(NoHistoryRevertMixin, SimpleHistoryAdmin):
    form = SlaThresholdsForm
    list_display = (
        "__str__",
        "warn_percent",
        "breach_percent",
        "reassign_percent",
        "version",
        "updated_at",
    )
    readonly_fields = ("breach_percent", "version", "updated_at")
    fields = (
        "warn_percent",
        "breach_percent",
        "reassign_percent",
        "change_reason",
        "version",
        "updated_at",
    )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        org_changes.save_thresholds(
            obj, actor=request.user, reason=form.cleaned_data["change_reason"]
        )
        self.message_user(
            request,
            "New timers use these thresholds; running timers keep the ones they started with.",
            messages.INFO,
        )


# --- timers --------------------------------------------------------------------------------------


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
        policies = SlaPolicy.objects.select_related("market", "source")
        return [(str(p.pk), str(p)) for p in policies]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(policy_id=self.value())
        return queryset


def _local(field: str, description: str):
    @admin.display(description=description, ordering=field)
    def show(self, obj):
        return local_html(getattr(obj, field), obj.lead.market.timezone)

    return show


@admin.register(SlaTimer)
class SlaTimerAdmin(LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
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
        "lead__market",
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
                    "consumed",
                    "running_since",
                    "paused_at",
                    "resume_at",
                    "paused_total",
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
                    "no_candidate_at",
                    "limit_reached_at",
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
    )

    started_local = _local("started_at", "Started")
    warn_local = _local("warn_at", "Warn at")
    due_local = _local("due_at", "Due (breach) at")
    reassign_local = _local("reassign_at", "Reassign at")
    next_fire_local = _local("next_fire_at", "Next fire at")
    completed_local = _local("completed_at", "Completed")

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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_replan_permission(self, request):
        return request.user.has_perm("escalations.change_slatimer")

    @admin.action(description="Re-plan under the current policy version…", permissions=["replan"])
    def replan(self, request, queryset):
        from escalations.timers import replan_timers

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


# --- reassignments -------------------------------------------------------------------------------


class RevertedFilter(admin.SimpleListFilter):
    title = "reverted"
    parameter_name = "reverted"

    def lookups(self, request, model_admin):
        return (("yes", "reverted"), ("no", "not reverted"))

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(reverted_at__isnull=self.value() == "no")
        return queryset


@admin.register(Reassignment)
class ReassignmentAdmin(LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    team_path = "lead__team"
    list_display = (
        "at_local",
        "lead_col",
        "state",
        "from_rep",
        "to_rep",
        "cause",
        "reverted",
        "actor_name",
    )
    list_filter = ("cause", RevertedFilter, team_filter("lead__team"), "state", "at")
    search_fields = ("lead__name", "lead__company", "from_rep__name", "to_rep__name")
    list_select_related = ("lead__market", "from_rep", "to_rep")
    actions = ["revert_selected"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "lead",
                    "state",
                    "from_rep",
                    "to_rep",
                    "cause",
                    "at_local",
                    "actor_name",
                    "policy_id_used",
                    "policy_version",
                    "timer",
                )
            },
        ),
        ("Candidates considered", {"fields": ("candidates_table",)}),
        ("Revert", {"fields": ("revert_info",)}),
    )
    readonly_fields = ("at_local", "candidates_table", "revert_info")

    @admin.display(description="When", ordering="at")
    def at_local(self, obj):
        return local_html(obj.at, obj.lead.market.timezone)

    @admin.display(description="Lead", ordering="lead__name")
    def lead_col(self, obj):
        return lead_link(obj.lead)

    @admin.display(description="Reverted?", boolean=True, ordering="reverted_at")
    def reverted(self, obj):
        return obj.is_reverted

    @admin.display(description="Candidates")
    def candidates_table(self, obj):
        from django.template.loader import render_to_string

        return render_to_string(
            "admin/escalations/reassignment/candidates.html", {"candidates": obj.candidates or []}
        )

    @admin.display(description="Reverted")
    def revert_info(self, obj):
        if not obj.is_reverted:
            return "not reverted"
        return (
            f"by {obj.reverted_by_name} on "
            f"{local_text(obj.reverted_at, obj.lead.market.timezone)}: {obj.revert_reason}"
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # the page is read-only; reverting is its own permission and form

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revert_permission(self, request):
        scope = user_scope(request)
        return request.user.has_perm("escalations.change_reassignment") and (
            scope.all_teams or bool(scope.team_ids)
        )

    def can_revert(self, request, obj) -> bool:
        if obj is None or obj.is_reverted or not self.has_revert_permission(request):
            return False
        try:
            check_can_revert(request.user, obj.lead)
        except NotAllowed:
            return False
        return True

    def get_urls(self):
        return [
            path(
                "<path:object_id>/revert/",
                self.admin_site.admin_view(self.revert_view),
                name="escalations_reassignment_revert",
            ),
            *super().get_urls(),
        ]

    def revert_view(self, request, object_id):
        return admin_views.revert_view(self, request, object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.contrib.admin.utils import unquote

        obj = self.get_object(request, unquote(object_id))
        extra = {
            "revert_url": reverse("admin:escalations_reassignment_revert", args=[obj.pk])
            if obj is not None and self.can_revert(request, obj)
            else None
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.action(description="Revert selected reassignments…", permissions=["revert"])
    def revert_selected(self, request, queryset):
        from escalations.reassign import ReassignError, revert_reassignment

        def apply(chosen, reason):
            done = 0
            rows = list(chosen.select_related("lead__team", "from_rep", "to_rep"))
            for reassignment in rows:
                try:
                    revert_reassignment(reassignment, actor=request.user, reason=reason)
                except (ReassignError, NotAllowed) as exc:
                    self.message_user(request, f"{reassignment}: {exc}", messages.ERROR)
                else:
                    done += 1
            if done:
                self.message_user(
                    request,
                    f"{done} reassignment(s) reverted; the earlier owners "
                    "have their leads back with a fresh SLA window.",
                    messages.SUCCESS,
                )
            elif not rows:
                self.message_user(
                    request,
                    "None of the selected reassignments is one you may revert.",
                    messages.ERROR,
                )

        return reason_action(
            self,
            request,
            queryset,
            title="Revert reassignments",
            intro="Each lead goes back to its previous owner with a fresh SLA window; both the "
            "reassignment and the revert stay in the audit log.",
            submit="Revert",
            apply=apply,
        )


# --- notifications -------------------------------------------------------------------------------


@admin.register(Notification)
class NotificationAdmin(LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
