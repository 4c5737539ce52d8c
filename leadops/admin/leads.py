"""The lead list and page. The list stays fast with a million leads (no full count, one
prefetch for the open timers); state, owner and hold change only through the lifecycle and
reassignment verbs, from the small form pages of `lead_actions`."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from audit.models import AuditEvent
from escalations.explain import explain
from escalations.models import SlaTimer
from leadops.admin.lead_actions import LeadActionsMixin
from leadops.admin_forms import LeadAddForm
from leadops.admin_kit import (
    LargeTableAdminMixin,
    NoHistoryRevertMixin,
    ScopedAdminMixin,
    SlaStatusFilter,
    audit_summary,
    duration_text,
    local_html,
    local_text,
    scope_queryset,
    sla_status_html,
    team_filter,
    time_left_text,
)
from leadops.models import Lead
from teams.models import Rep, Team

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
    "created_local",
    "updated_local",
)


@admin.register(Lead)
class LeadAdmin(
    LeadActionsMixin,
    LargeTableAdminMixin,
    ScopedAdminMixin,
    NoHistoryRevertMixin,
    SimpleHistoryAdmin,
):
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
        return time_left_text(obj, self._open_timer(obj), now)

    @admin.display(description="Created", ordering="created_at")
    def created_local(self, obj):
        return local_html(obj.created_at, obj.market.timezone)

    @admin.display(description="Updated")
    def updated_local(self, obj):
        return local_html(obj.updated_at, obj.market.timezone)

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
            ("Record", {"fields": ("created_local", "updated_local"), "classes": ("collapse",)}),
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
                "time_left": facts.status.time_left,
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

    def lead_summary(self, lead):
        """The one-line state of the lead shown on top of its action pages."""
        timer = self._open_timer(lead)
        return format_html(
            "<p><strong>{}</strong> · {} · {} · owner {} · SLA {} ({})</p>",
            lead,
            lead.state,
            lead.team,
            lead.owner or "nobody",
            sla_status_html(timer),
            time_left_text(lead, timer, timezone.now()),
        )
