"""Admin for sources, leads and activities. The lead list stays fast with a million leads (no
full count, one prefetch for the open timers); state, owner and hold change only through the
lifecycle and reassignment verbs, from small form pages linked on the lead's change page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from audit.models import AuditEvent
from escalations.admin_helpers import (
    LargeTableAdminMixin,
    NoHistoryRevertMixin,
    ScopedAdminMixin,
    SlaStatusFilter,
    audit_summary,
    duration_text,
    local_html,
    local_text,
    object_form_page,
    scope_queryset,
    sla_status_html,
    team_filter,
    time_left_text,
)
from escalations.explain import explain
from escalations.models import SlaTimer
from leadops import lifecycle
from leadops.admin_forms import (
    ActivityForm,
    HoldForm,
    LeadAddForm,
    ReassignForm,
    ResumeForm,
    TransitionForm,
    add_domain_error,
)
from leadops.models import Activity, Lead, Source
from teams.models import Rep, Team


@admin.register(Source)
class SourceAdmin(NoHistoryRevertMixin, SimpleHistoryAdmin):
    list_display = ("code", "name")
    search_fields = ("code", "name")

    def save_model(self, request, obj, form, change):
        obj._change_reason = "edited in the admin"
        super().save_model(request, obj, form, change)


LEAD_FIELDS = ("name", "company", "email", "phone")
READONLY_ON_CHANGE = (
    "external_id",
    "market",
    "source",
    "team",
    "owner",
    "state",
    "state_since",
    "hold",
    "explain_sla",
    "timeline",
    "activity_list",
    "ownership_history",
    "created_at",
    "updated_at",
)


@admin.register(Lead)
class LeadAdmin(LargeTableAdminMixin, ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    team_path = "team"
    list_display = (
        "name",
        "company",
        "market_code",
        "team",
        "owner",
        "state",
        "sla",
        "time_left",
        "on_hold",
        "created_local",
    )
    list_display_links = ("name",)
    list_filter = ("market", team_filter("team"), "state", SlaStatusFilter, "on_hold", "source")
    search_fields = ("name", "company", "email", "=external_id")
    list_select_related = ("market", "team", "owner", "source")
    sortable_by = ("name", "company", "state", "created_local", "on_hold")

    def get_queryset(self, request):
        # The open timer of each lead on the page in one query (not one per row).
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch(
                    "timers",
                    queryset=SlaTimer.objects.filter(completed_at__isnull=True),
                    to_attr="open_timer_list",
                )
            )
        )

    def get_changelist_instance(self, request):
        cl = super().get_changelist_instance(request)
        now = timezone.now()  # one clock reading for every "time left" on the page
        for lead in cl.result_list:
            lead._admin_now = now
        return cl

    # --- list columns -------------------------------------------------------------------------

    @staticmethod
    def _open_timer(lead):
        timers = getattr(lead, "open_timer_list", None)
        if timers is None:
            timers = list(SlaTimer.objects.filter(lead=lead, completed_at__isnull=True))
            lead.open_timer_list = timers
        return timers[0] if timers else None

    @admin.display(description="Market", ordering="market__code")
    def market_code(self, obj):
        return obj.market.code

    @admin.display(description="SLA status")
    def sla(self, obj):
        return sla_status_html(self._open_timer(obj))

    @admin.display(description="Time left")
    def time_left(self, obj):
        now = getattr(obj, "_admin_now", None) or timezone.now()
        return time_left_text(self._open_timer(obj), now)

    @admin.display(description="Created", ordering="created_at")
    def created_local(self, obj):
        return local_html(obj.created_at, obj.market.timezone)

    # --- forms ---------------------------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return (
                (None, {"fields": (*LEAD_FIELDS, "external_id")}),
                (
                    "Where",
                    {
                        "fields": ("market", "source", "team", "owner"),
                        "description": "The lead is created through the lifecycle: without an "
                        "owner it is routed to an available rep of the team, and its SLA timer "
                        "starts.",
                    },
                ),
            )
        return (
            (None, {"fields": (*LEAD_FIELDS, "external_id")}),
            ("Where", {"fields": ("market", "source", "team")}),
            (
                "State and owner",
                {
                    "fields": ("state", "state_since", "owner", "hold"),
                    "description": "Changed with the buttons at the top right (change state, hold, "
                    "resume, reassign, log activity), never as raw fields.",
                },
            ),
            ("Explain SLA", {"fields": ("explain_sla",)}),
            ("Escalation timeline", {"fields": ("timeline",)}),
            ("Activities", {"fields": ("activity_list",)}),
            ("Ownership and state history", {"fields": ("ownership_history",)}),
            ("Record", {"fields": ("created_at", "updated_at"), "classes": ("collapse",)}),
        )

    def get_readonly_fields(self, request, obj=None):
        return READONLY_ON_CHANGE if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("LeadAddForm", (LeadAddForm,), {"actor": request.user})
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            kwargs["queryset"] = scope_queryset(
                request, Team.objects.select_related("market"), "pk"
            )
        elif db_field.name == "owner":
            kwargs["queryset"] = scope_queryset(
                request, Rep.objects.filter(active=True).select_related("team"), "team"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_form(self, request, form, change):
        if not change:
            return form.created_lead  # made by lifecycle.create_lead during validation
        return super().save_form(request, form, change)

    def save_model(self, request, obj, form, change):
        if not change:
            return
        # Only the contact fields, so that a concurrent reassignment or sweep is not undone by
        # saving the whole row as it was loaded.
        fields = [f for f in form.changed_data if f in LEAD_FIELDS]
        if fields:
            obj._history_user = request.user
            obj._change_reason = "contact details edited in the admin"
            obj.save(update_fields=[*fields, "updated_at"])

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    # --- change page panels -------------------------------------------------------------------

    @admin.display(description="In state since")
    def state_since(self, obj):
        return local_html(obj.state_entered_at, obj.market.timezone)

    @admin.display(description="Hold")
    def hold(self, obj):
        if not obj.on_hold:
            return "not on hold"
        until = (
            f", resumes {local_text(obj.hold_until, obj.market.timezone)}" if obj.hold_until else ""
        )
        return (
            f"on hold since {local_text(obj.held_at, obj.market.timezone)}: "
            f"{obj.hold_reason}{until}"
        )

    @admin.display(description="SLA")
    def explain_sla(self, obj):
        facts = explain(obj, now=timezone.now(), timer=self._open_timer(obj))
        tz = obj.market.timezone
        timer = facts.timer
        context = {
            "lead": obj,
            "timer": timer,
            "tz": tz,
            "status": facts.code,
            "status_html": sla_status_html(timer),
            "resolved": facts.matching,
        }
        if timer is None:
            context["last"] = facts.last_timer
            if facts.last_timer is not None:
                context["last_completed"] = local_text(facts.last_timer.completed_at, tz)
            return render_to_string("admin/leadops/lead/explain_sla.html", context)
        context.update(
            {
                "policy_url": reverse("admin:escalations_slapolicy_change", args=[timer.policy_id]),
                "policy": facts.policy,
                "stale": facts.stale,
                "no_policy_now": facts.no_policy_now,
                "time_left": time_left_text(timer, facts.now),
                "window_business": duration_text(timer.window_business),
                "elapsed": duration_text(facts.elapsed),
                "started": local_text(timer.started_at, tz),
                "stages": [
                    (
                        stage.name.capitalize(),
                        stage.percent,
                        local_text(stage.at, tz),
                        stage.reached,
                    )
                    for stage in facts.stages
                ],
                "next_fire": local_text(timer.next_fire_at, tz) if timer.next_fire_at else None,
                "paused_since": local_text(timer.paused_at, tz) if timer.paused_at else None,
                "resume_at": local_text(timer.resume_at, tz) if timer.resume_at else None,
                "paused_total": duration_text(facts.paused_total),
                "owner_at_start": timer.owner,
                "timer_url": reverse("admin:escalations_slatimer_change", args=[timer.pk]),
            }
        )
        return render_to_string("admin/leadops/lead/explain_sla.html", context)

    @admin.display(description="Audit events, oldest first")
    def timeline(self, obj):
        tz = obj.market.timezone
        events = list(AuditEvent.objects.filter(lead_id=obj.pk).order_by("occurred_at", "id")[:500])
        rows = [
            {
                "when": local_text(e.occurred_at, tz),
                "kind": e.get_kind_display(),
                "actor": e.actor_name,
                "owner": e.owner_name,
                "state": e.state,
                "policy": f"#{e.policy_id} v{e.policy_version}" if e.policy_id else "",
                "due": local_text(e.stage_due_at, tz) if e.stage_due_at else "",
                "summary": audit_summary(e),
                "url": reverse("admin:audit_auditevent_change", args=[e.pk]),
            }
            for e in events
        ]
        return render_to_string(
            "admin/leadops/lead/timeline.html",
            {
                "rows": rows,
                "all_url": reverse("admin:audit_auditevent_changelist") + f"?lead={obj.pk}",
            },
        )

    @admin.display(description="Activities, newest first")
    def activity_list(self, obj):
        tz = obj.market.timezone
        rows = [
            {
                "when": local_text(a.occurred_at, tz),
                "recorded": local_text(a.recorded_at, tz),
                "kind": a.get_kind_display(),
                "actor": a.actor_name or "system",
                "progress": a.counted_as_progress,
                "text": a.reason or a.notes,
            }
            for a in obj.activities.order_by("-occurred_at", "-id")[:200]
        ]
        return render_to_string("admin/leadops/lead/activities.html", {"rows": rows})

    @admin.display(description="From the lead's history")
    def ownership_history(self, obj):
        tz = obj.market.timezone
        records = list(
            obj.history.order_by("history_date", "history_id").values(
                "history_date",
                "owner_id",
                "state",
                "on_hold",
                "history_change_reason",
                "history_user__username",
                "history_type",
            )
        )
        rep_ids = {r["owner_id"] for r in records if r["owner_id"]}
        names = {r.pk: r.name for r in Rep.objects.filter(pk__in=rep_ids)}
        rows, previous = [], None
        for record in records:
            changes = []
            owner = names.get(record["owner_id"], "nobody") if record["owner_id"] else "nobody"
            if previous is None:
                changes.append(f"created in {record['state']}, owner {owner}")
            else:
                if record["owner_id"] != previous["owner_id"]:
                    before = (
                        names.get(previous["owner_id"], "nobody")
                        if previous["owner_id"]
                        else "nobody"
                    )
                    changes.append(f"owner {before} → {owner}")
                if record["state"] != previous["state"]:
                    changes.append(f"state {previous['state']} → {record['state']}")
                if record["on_hold"] != previous["on_hold"]:
                    changes.append("put on hold" if record["on_hold"] else "hold ended")
            previous = record
            if changes:
                rows.append(
                    {
                        "when": local_text(record["history_date"], tz),
                        "changes": "; ".join(changes),
                        "by": record["history_user__username"] or "system",
                        "reason": record["history_change_reason"] or "",
                    }
                )
        return render_to_string(
            "admin/leadops/lead/ownership.html",
            {
                "rows": rows,
                "history_url": reverse("admin:leadops_lead_history", args=[obj.pk]),
            },
        )

    # --- lifecycle actions on one lead ----------------------------------------------------------

    def get_urls(self):
        def wrap(view):
            return self.admin_site.admin_view(view)

        custom = [
            path(
                "<path:object_id>/transition/",
                wrap(self.transition_view),
                name="leadops_lead_transition",
            ),
            path("<path:object_id>/hold/", wrap(self.hold_view), name="leadops_lead_hold"),
            path("<path:object_id>/resume/", wrap(self.resume_view), name="leadops_lead_resume"),
            path(
                "<path:object_id>/reassign/", wrap(self.reassign_view), name="leadops_lead_reassign"
            ),
            path(
                "<path:object_id>/activity/", wrap(self.activity_view), name="leadops_lead_activity"
            ),
        ]
        return custom + super().get_urls()

    def lead_actions(self, request, lead):
        if not self.has_change_permission(request, lead):
            return []
        actions = [("activity", "Log activity…")]
        if not lead.is_closed:
            actions.insert(0, ("transition", "Change state…"))
            actions.append(("resume", "Resume SLA…") if lead.on_hold else ("hold", "Put on hold…"))
            actions.append(("reassign", "Reassign…"))
        return [
            {"url": reverse(f"admin:leadops_lead_{name}", args=[lead.pk]), "label": label}
            for name, label in actions
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        lead = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "lead_actions": self.lead_actions(request, lead) if lead else [],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _lead_for_action(self, request, object_id):
        lead = self.get_object(request, unquote(object_id))
        if lead is None:
            raise Http404("No such lead, or not one of your team's.")
        if not self.has_change_permission(request, lead):
            raise PermissionDenied
        return lead

    def _done(self, request, lead, message):
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:leadops_lead_change", args=[lead.pk]))

    def _summary(self, lead):
        timer = self._open_timer(lead)
        return format_html(
            "<p><strong>{}</strong> · {} · {} · owner {} · SLA {} ({})</p>",
            lead,
            lead.state,
            lead.team,
            lead.owner or "nobody",
            sla_status_html(timer),
            time_left_text(timer, timezone.now()),
        )

    def _page(self, request, lead, title, form, submit, intro=""):
        return object_form_page(
            self,
            request,
            lead,
            title=title,
            form=form,
            submit=submit,
            intro=intro,
            extra={"summary": self._summary(lead)},
        )

    def transition_view(self, request, object_id):
        lead = self._lead_for_action(request, object_id)
        form = TransitionForm(lead, request.POST or None)
        if request.method == "POST" and form.is_valid():
            before = lead.state
            try:
                lifecycle.transition(
                    lead,
                    form.cleaned_data["to_state"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except lifecycle.LifecycleError as exc:
                add_domain_error(form, exc)
            else:
                return self._done(request, lead, f"{lead} moved from {before} to {lead.state}.")
        return self._page(
            request,
            lead,
            f"Change the state of {lead}",
            form,
            "Change state",
            "Only the moves the lifecycle allows from this state are offered.",
        )

    def hold_view(self, request, object_id):
        lead = self._lead_for_action(request, object_id)
        form = HoldForm(lead, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                lifecycle.put_on_hold(
                    lead,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    resume_at=form.cleaned_data.get("resume_at"),
                )
            except lifecycle.LifecycleError as exc:
                add_domain_error(form, exc)
            else:
                return self._done(request, lead, f"{lead} is on hold; its SLA clock is paused.")
        return self._page(
            request,
            lead,
            f"Put {lead} on hold",
            form,
            "Put on hold",
            "Waiting on the customer: the SLA clock pauses until the hold ends.",
        )

    def resume_view(self, request, object_id):
        lead = self._lead_for_action(request, object_id)
        form = ResumeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                lifecycle.resume(lead, actor=request.user, reason=form.cleaned_data["reason"])
            except lifecycle.LifecycleError as exc:
                add_domain_error(form, exc)
            else:
                return self._done(request, lead, f"{lead} resumed; its SLA clock runs again.")
        return self._page(
            request,
            lead,
            f"Resume {lead}",
            form,
            "Resume",
            "The SLA clock restarts with the business time that was left.",
        )

    def reassign_view(self, request, object_id):
        from escalations.reassign import ReassignError, reassign_lead

        lead = self._lead_for_action(request, object_id)
        form = ReassignForm(lead, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    # Lock and re-read the lead: the sweep may be reassigning it right now.
                    locked = (
                        Lead.objects.select_for_update(of=("self",))
                        .select_related("market", "source", "team", "owner")
                        .get(pk=lead.pk)
                    )
                    reassign_lead(
                        locked, form.cleaned_data["to_rep"], cause="manual", actor=request.user
                    )
            except ReassignError as exc:
                add_domain_error(form, exc)
            else:
                return self._done(
                    request, locked, f"{locked} reassigned to {form.cleaned_data['to_rep']}."
                )
        return self._page(request, lead, f"Reassign {lead}", form, "Reassign")

    def activity_view(self, request, object_id):
        lead = self._lead_for_action(request, object_id)
        form = ActivityForm(lead, request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                activity = lifecycle.record_activity(
                    lead,
                    data["kind"],
                    actor=request.user,
                    occurred_at=data.get("occurred_at"),
                    notes=data["notes"],
                    reason=data["reason"],
                )
            except lifecycle.LifecycleError as exc:
                add_domain_error(form, exc)
            else:
                progress = " It counted as progress." if activity.counted_as_progress else ""
                return self._done(
                    request, lead, f"{activity.get_kind_display()} logged on {lead}.{progress}"
                )
        return self._page(
            request,
            lead,
            f"Log an activity on {lead}",
            form,
            "Log activity",
            "Only the owner's outbound attempts (or a disqualification) count as progress in NEW.",
        )


@admin.register(Activity)
class ActivityAdmin(LargeTableAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    """Read-only: activities are recorded through the lifecycle ("Log activity" on a lead)."""

    team_path = "lead__team"
    ordering = ("-id",)  # `occurred_at` is indexed only per lead
    list_display = ("occurred_local", "kind", "lead", "actor_name", "counted_as_progress", "reason")
    list_filter = ("kind", "counted_as_progress", team_filter("lead__team"))
    search_fields = ("lead__name", "lead__company", "actor_name")
    list_select_related = ("lead__market",)

    @admin.display(description="Occurred", ordering="occurred_at")
    def occurred_local(self, obj):
        return local_html(obj.occurred_at, obj.lead.market.timezone)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
