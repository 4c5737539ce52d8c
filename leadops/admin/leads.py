"""The lead list and page. The list stays fast with a million leads (no full count, one
prefetch for the open timers, every order and search served by an index: see `bench admin`);
state, owner and hold change only through the lifecycle and reassignment verbs, from the small
form pages of `lead_actions`."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db import connection
from django.db.models import F, OrderBy, Prefetch, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from audit.models import AuditEvent
from escalations.explain import STATUS_LABELS, explain
from escalations.models import SlaTimer, Stage
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
    market_filter,
    scope_queryset,
    sla_status_html,
    team_filter,
    time_left_text,
)
from leadops.models import Lead
from teams.models import Rep, Team

# Most urgent first: the open timer's next stage instant, soonest (or longest overdue) first;
# leads with nothing due (paused, closed, no SLA) after them, newest first. Index
# `lead_next_stage` (next_stage_at, -id) serves it forwards and, reversed, backwards.
MOST_URGENT_FIRST = F("next_stage_at").asc(nulls_last=True)
# What the next stage of an open timer is, by the stage it has reached.
NEXT_STAGE_LABELS = {
    Stage.PENDING: "warning",
    Stage.WARNED: "breach",
    Stage.BREACHED: "reassignment",
    Stage.REASSIGNED: "breached since",
}
# Below this a name/company fragment has no full trigram: search by prefix instead.
TRIGRAM = 3


class LeadSlaStatusFilter(SlaStatusFilter):
    """The SLA status filter, plus what `next_stage_at` says of it (NULL exactly when there is
    no running open timer), so that the most-urgent-first index starts at the right end: "no
    SLA" among a million leads would otherwise walk past every open lead first."""

    def queryset(self, request, queryset):
        queryset = super().queryset(request, queryset)
        if self.value() in ("no_sla", "paused"):
            return queryset.filter(next_stage_at__isnull=True)
        if self.value() in STATUS_LABELS:
            return queryset.filter(next_stage_at__isnull=False)
        return queryset


class LeadChangeList(ChangeList):
    def _get_deterministic_ordering(self, ordering):
        # The tie-breaking id runs against the first key (`-pk` after an ascending key, `pk`
        # after a descending one), so that one index (key, -id) serves both directions.
        ordering = super()._get_deterministic_ordering(ordering)
        if len(ordering) > 1 and ordering[-1] == "-pk" and _descending(ordering[0]):
            ordering[-1] = "pk"
        return ordering


def _descending(part) -> bool:
    if isinstance(part, OrderBy):
        return part.descending
    return isinstance(part, str) and part.startswith("-")


def search_leads(queryset, search_term: str):
    """The lead search on PostgreSQL, each word narrowing: a word with `@` is an e-mail
    address (exact, any case: index `lead_email_upper`); any other word an external id (exact:
    its unique index) or a fragment of the name or company (trigram indexes `lead_name_trgm`,
    `lead_company_trgm`; under three letters, a prefix)."""
    for word in search_term.split():
        if "@" in word:
            queryset = queryset.filter(email__iexact=word)
        elif len(word) >= TRIGRAM:
            queryset = queryset.filter(
                Q(external_id=word) | Q(name__icontains=word) | Q(company__icontains=word)
            )
        else:
            queryset = queryset.filter(
                Q(external_id=word) | Q(name__istartswith=word) | Q(company__istartswith=word)
            )
    return queryset


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
        "next_stage",
        "on_hold",
        "created_local",
    )
    list_display_links = ("name",)
    list_filter = (
        market_filter("market"),
        team_filter("team"),
        "state",
        LeadSlaStatusFilter,
        "on_hold",
        "source",
    )
    # SQLite: icontains on each (a scan); PostgreSQL: `search_leads`, by index.
    search_fields = ("name", "company", "email", "=external_id")
    list_select_related = ("market", "team", "owner", "source")
    ordering = (MOST_URGENT_FIRST,)
    # Only columns an index can sort at a million leads (filters cover state, hold, market).
    sortable_by = ("name", "next_stage", "created_local")

    def get_changelist(self, request, **kwargs):
        return LeadChangeList

    def get_search_results(self, request, queryset, search_term):
        if connection.vendor != "postgresql":
            return super().get_search_results(request, queryset, search_term)
        return search_leads(queryset, search_term), False

    def get_queryset(self, request):
        # The open timer of each lead on the page in one query (not one per row), with what
        # the change page's SLA panel shows of it.
        return (
            super()
            .get_queryset(request)
            .select_related("market", "team", "owner", "source")
            .prefetch_related(
                Prefetch(
                    "timers",
                    queryset=SlaTimer.objects.filter(completed_at__isnull=True).select_related(
                        "policy", "owner"
                    ),
                    to_attr="open_timer_list",
                )
            )
        )

    def get_object(self, request, object_id, from_field=None):
        # The change page asks twice (its action buttons, then Django's form view): read once.
        cache = request.__dict__.setdefault("_leadops_lead_objects", {})
        key = (object_id, from_field)
        if key not in cache:
            cache[key] = super().get_object(request, object_id, from_field)
        return cache[key]

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

    @admin.display(description="Next stage", ordering=MOST_URGENT_FIRST)
    def next_stage(self, obj):
        timer = self._open_timer(obj)
        if obj.next_stage_at is None or timer is None:
            return "—"
        label = NEXT_STAGE_LABELS.get(timer.stage, "next stage")
        return format_html("{} {}", label, local_html(obj.next_stage_at, obj.market.timezone))

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
                "owner__name",  # joined: no second query for the names
            )
        )
        names = {r["owner_id"]: r["owner__name"] for r in records if r["owner__name"]}
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
