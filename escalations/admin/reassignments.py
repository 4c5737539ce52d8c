"""Reassignments, read-only, with the revert form and action (`reassign.revert_reassignment`,
authorised by `escalations.permissions.check_can_revert`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from escalations.models import Reassignment
from escalations.permissions import NotAllowed, check_can_revert
from escalations.reassign import ReassignError, revert_reassignment
from leadops.admin_kit import (
    LargeTableAdminMixin,
    ReadOnlyAdminMixin,
    ReasonForm,
    ScopedAdminMixin,
    lead_link,
    local_html,
    local_text,
    object_form_page,
    reason_action,
    team_filter,
    user_scope,
)


def revert_view(model_admin, request, object_id):
    """Revert one reassignment with a reason, through `revert_reassignment`."""
    if not model_admin.has_revert_permission(request):
        raise PermissionDenied
    refusal = model_admin.scope_refusal(request, object_id)
    if refusal is not None:
        return refusal
    reassignment = (
        Reassignment.objects.select_related("lead__team", "lead__market", "from_rep", "to_rep")
        .filter(pk=unquote(object_id))
        .first()
    )
    if reassignment is None:
        raise Http404("No such reassignment.")
    try:
        check_can_revert(request.user, reassignment.lead)
    except NotAllowed as exc:
        raise PermissionDenied(str(exc)) from None
    change_url = reverse("admin:escalations_reassignment_change", args=[reassignment.pk])
    if reassignment.is_reverted:
        model_admin.message_user(
            request,
            f"Already reverted by {reassignment.reverted_by_name} ({reassignment.revert_reason}).",
            messages.WARNING,
        )
        return HttpResponseRedirect(change_url)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            revert_reassignment(
                reassignment, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except (ReassignError, NotAllowed) as exc:
            form.add_error(None, str(exc))
        else:
            model_admin.message_user(
                request,
                f"Reverted: {reassignment.lead} is back with {reassignment.from_rep}, "
                "with a fresh SLA window.",
                messages.SUCCESS,
            )
            return HttpResponseRedirect(change_url)
    tz = reassignment.lead.market.timezone
    summary = format_html(
        "<p><strong>{}</strong> was reassigned from <strong>{}</strong> to <strong>{}</strong> "
        "({}) on {}.</p><p>Reverting gives it back to {} with a fresh SLA window; both steps "
        "stay in the audit log.</p>",
        reassignment.lead,
        reassignment.from_rep or "nobody",
        reassignment.to_rep,
        reassignment.get_cause_display(),
        local_text(reassignment.at, tz),
        reassignment.from_rep or "nobody",
    )
    return object_form_page(
        model_admin,
        request,
        reassignment,
        title="Revert reassignment",
        form=form,
        submit="Revert",
        extra={"summary": summary},
    )


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
class ReassignmentAdmin(
    ReadOnlyAdminMixin, LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin
):
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

    # The page is read-only (ReadOnlyAdminMixin); reverting is its own permission and form.
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
        return revert_view(self, request, object_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {
            "revert_url": reverse("admin:escalations_reassignment_revert", args=[obj.pk])
            if obj is not None and self.can_revert(request, obj)
            else None
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.action(description="Revert selected reassignments…", permissions=["revert"])
    def revert_selected(self, request, queryset):
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
