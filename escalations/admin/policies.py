"""SLA policies (a required change reason, the effective matrix, deactivation with its
consequences) and the thresholds. Saves go through `escalations.org_changes`."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from audit import calibration
from escalations import org_changes, whatif
from escalations.models import SlaPolicy, SlaThresholds, SlaTimer
from escalations.policies import effective_matrix
from leadops.admin_kit import (
    NoHistoryRevertMixin,
    ReadOnlyAdminMixin,
    ReasonForm,
    ScopedAdminMixin,
    local_html,
    local_text,
    market_filter,
    object_form_page,
    reason_action,
    user_scope,
)
from leadops.lifecycle import FORWARD_PATH
from leadops.models import LeadState, Source
from teams.admin_forms import ChangeReasonMixin
from teams.models import Market

# Rows of the matrix: the states a lead waits in (WON and the outcomes are closed).
MATRIX_STATES = tuple(state for state in FORWARD_PATH if state != LeadState.WON)
SCOPE_LABELS = {3: "market + source", 2: "market", 1: "source", 0: "default"}


def _pick_market(request, markets):
    wanted = request.GET.get("market", "")
    for market in markets:
        if wanted in (str(market.pk), market.code):
            return market
    return markets[0] if markets else None


def policy_matrix_view(model_admin, request):
    """State × source for one market: the effective window and the policy row supplying it."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    markets = list(user_scope(request).filter_markets(Market.objects.order_by("code"), "pk"))
    market = _pick_market(request, markets)
    sources = list(Source.objects.order_by("code"))
    matrix = effective_matrix(market) if market else {}
    rows = []
    for state in MATRIX_STATES:
        cells = []
        for source in sources:
            policy = matrix.get((state, source.code))
            if policy is None:
                cells.append(None)
                continue
            cells.append(
                {
                    "policy": policy,
                    "window": policy.window,
                    "clock": policy.get_clock_display(),
                    "scope": SCOPE_LABELS[policy.specificity],
                    "url": reverse("admin:escalations_slapolicy_change", args=[policy.pk]),
                }
            )
        rows.append({"state": state, "label": LeadState(state).label, "cells": cells})
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Effective SLA matrix{f' for {market}' if market else ''}",
        "opts": opts,
        "markets": markets,
        "market": market,
        "sources": sources,
        "rows": rows,
        "local_now": local_text(timezone.now(), market.timezone) if market else "",
        "hours": {day: ivs for day, ivs in (market.hours or {}).items() if ivs} if market else {},
    }
    return TemplateResponse(request, "admin/escalations/slapolicy/matrix.html", context)


class PolicyPreviewForm(forms.ModelForm):
    """The policy form's values, checked but never saved: the what-if's draft edit."""

    class Meta:
        model = SlaPolicy
        fields = ["state", "market", "source", "window", "clock", "active"]

    def validate_unique(self):
        # A draft for a (state, market, source) that has a row replaces that row in the replay.
        pass


def policy_preview_view(model_admin, request):
    """ "Preview impact": replay the last quarter (or the chosen one) under the active policies
    with this unsaved edit, scoped to the user's teams; nothing is saved."""
    if request.method != "POST" or not model_admin.has_view_permission(request):
        raise PermissionDenied
    policy = None
    wanted = request.POST.get("_whatif_policy") or request.GET.get("policy")
    if wanted and str(wanted).isdigit():
        policy = SlaPolicy.objects.filter(pk=int(wanted)).first()
    if request.POST.get("_whatif_partial") and policy is not None:
        # The read-only page (a team lead) posts only a window and a clock to try.
        data = forms.models.model_to_dict(policy, fields=PolicyPreviewForm.Meta.fields)
        data = {k: ("" if v is None else v) for k, v in data.items()}
        data.update({k: request.POST[k] for k in ("window", "clock") if k in request.POST})
    else:
        data = request.POST
    replacing = str(policy) if policy else ""
    # The form edits a copy: `policy` keeps the saved values for the page.
    draft = SlaPolicy.objects.get(pk=policy.pk) if policy else SlaPolicy()
    form = PolicyPreviewForm(data, instance=draft)
    now = timezone.now()
    try:
        period = calibration.parse_period(
            quarter_text=request.POST.get("_whatif_quarter", ""), now=now
        )
    except calibration.PeriodError:
        period = calibration.last_full_quarter(now)
    result = None
    if form.is_valid():
        scope = user_scope(request)
        result = whatif.replay(
            period,
            whatif.draft_with(form.instance),
            now=now,
            team_ids=None if scope.all_teams else set(scope.team_ids),
        )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Preview impact (not saved)",
        "opts": model_admin.model._meta,
        "form": form,
        "policy": policy,
        "replacing": replacing,
        "draft": form.instance,
        "period": period,
        "result": result,
        "scoped": not user_scope(request).all_teams,
        "columns": (
            ("warnings", "predicted_warnings", "warnings"),
            ("breaches", "predicted_breaches", "breaches"),
            ("reassign_stages", "predicted_reassign_stages", "reassign stages"),
        ),
    }
    return TemplateResponse(request, "admin/escalations/slapolicy/preview.html", context)


class SlaPolicyForm(ChangeReasonMixin, forms.ModelForm):
    change_reason_required = True

    class Meta:
        model = SlaPolicy
        fields = ["state", "market", "source", "window", "clock", "active"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    # A team lead reads the policies that can apply to their leads: their markets' and the
    # defaults (no market).
    market_path = "market"
    market_shared = True
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
        "updated_local",
    )
    list_filter = ("state", market_filter("market"), "source", "clock", "active")
    search_fields = ("window", "market__code", "market__name", "source__code", "source__name")
    list_select_related = ("market", "source")
    readonly_fields = ("version", "updated_local")
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
        ("Version", {"fields": ("version", "updated_local")}),
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

    @admin.display(description="Updated", ordering="updated_at")
    def updated_local(self, obj):
        # A market's policy in its zone; a policy for every market in the viewer's.
        return local_html(obj.updated_at, obj.market.timezone if obj.market_id else None)

    @admin.display(description="Scope")
    def scope(self, obj):
        return SCOPE_LABELS[obj.specificity]

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
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="escalations_slapolicy_preview",
            ),
            *super().get_urls(),
        ]

    def matrix_view(self, request):
        return policy_matrix_view(self, request)

    def preview_view(self, request):
        return policy_preview_view(self, request)

    def render_change_form(self, request, context, *args, **kwargs):
        context["whatif_quarters"] = calibration.recent_quarters(timezone.now(), 6)
        return super().render_change_form(request, context, *args, **kwargs)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletes would skip the change reason
        return actions

    # --- deleting: never for ops managers (they deactivate), a superuser with a reason ---------

    def has_delete_permission(self, request, obj=None):
        """Policies are deactivated, not deleted: only a superuser may delete one, and only one
        no timer ever ran on (the delete of any other could not succeed, so it is not offered)."""
        if not request.user.is_superuser:
            return False
        return obj is None or not org_changes.policy_in_use(obj)

    def delete_view(self, request, object_id, extra_context=None):
        policy = self.get_object(request, object_id)
        if policy is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_delete_permission(request, policy):
            raise PermissionDenied(
                "Policies are deactivated, not deleted; only a superuser may delete a policy that "
                "no timer ever ran on."
            )
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                org_changes.delete_policy(
                    policy, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except org_changes.PolicyInUse as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(
                    reverse("admin:escalations_slapolicy_change", args=[policy.pk])
                )
            self.message_user(request, f"Policy {policy} deleted (audited).", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:escalations_slapolicy_changelist"))
        return object_form_page(
            self,
            request,
            policy,
            title=f"Delete SLA policy {policy}",
            form=form,
            submit="Delete",
            intro="No timer ever ran on this policy, so it can be deleted. The reason goes into "
            "its history and the audit log. To stop a policy from applying, deactivate it instead.",
        )

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
class SlaThresholdsAdmin(
    ReadOnlyAdminMixin, ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin
):
    team_path = None  # one global row
    change_allowed = True  # one row, edited in place; never added or deleted

    form = SlaThresholdsForm
    list_display = (
        "__str__",
        "warn_percent",
        "breach_percent",
        "reassign_percent",
        "version",
        "updated_local",
    )
    readonly_fields = ("breach_percent", "version", "updated_local")
    fields = (
        "warn_percent",
        "breach_percent",
        "reassign_percent",
        "change_reason",
        "version",
        "updated_local",
    )

    @admin.display(description="Updated")
    def updated_local(self, obj):
        return local_html(obj.updated_at)

    def save_model(self, request, obj, form, change):
        org_changes.save_thresholds(
            obj, actor=request.user, reason=form.cleaned_data["change_reason"]
        )
        self.message_user(
            request,
            "New timers use these thresholds; running timers keep the ones they started with.",
            messages.INFO,
        )
