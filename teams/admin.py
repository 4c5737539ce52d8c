"""Admin for markets (business calendars), teams, reps and time off. Thin: a calendar change
re-plans the market's timers and a rep made inactive hands over their leads, both through the
escalations domain functions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from escalations import org_changes
from leadops.admin_kit import (
    NoHistoryRevertMixin,
    ScopedAdminMixin,
    local_html,
    local_text,
    market_filter,
    team_filter,
)
from leadops.models import OPEN_STATES, Lead
from teams import hours as hours_format
from teams.admin_forms import MarketForm, RepForm, day_field_name
from teams.calendar_builders import calendar_for_market
from teams.models import Market, Rep, Role, Team, TimeOff


def week_summary(hours: dict | None) -> str:
    if not hours:
        return "—"
    parts = []
    for day in hours_format.WEEKDAYS:
        intervals = hours.get(day) or []
        if intervals:
            parts.append(f"{day.capitalize()} {', '.join(intervals)}")
    return "; ".join(parts) or "closed"


def _reason(form, default: str) -> str:
    return (form.cleaned_data.get("change_reason") or "").strip() or default


@admin.register(Market)
class MarketAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    market_path = "pk"  # a team lead sees the markets their teams work in
    form = MarketForm
    list_display = (
        "code",
        "name",
        "timezone",
        "local_now",
        "open_now",
        "hours_summary",
        "holidays",
        "team_count",
    )
    list_filter = ("timezone", "holiday_country")
    search_fields = ("code", "name", "timezone")
    fieldsets = (
        (None, {"fields": ("code", "name", "timezone")}),
        (
            "Weekly opening hours",
            {"fields": tuple(day_field_name(d) for d in hours_format.WEEKDAYS)},
        ),
        (
            "Holidays and exceptions",
            {"fields": ("holiday_country", "holiday_subdivision", "closed_dates", "open_dates")},
        ),
        ("Why", {"fields": ("change_reason",)}),
    )
    readonly_fields = ("hours_summary", "local_now")

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return (
                (None, {"fields": ("code", "name", "timezone", "local_now")}),
                ("Weekly opening hours", {"fields": ("hours_summary",)}),
                (
                    "Holidays and exceptions",
                    {
                        "fields": (
                            "holiday_country",
                            "holiday_subdivision",
                            "extra_closed_dates",
                            "extra_open_dates",
                        )
                    },
                ),
            )
        return super().get_fieldsets(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(team_total=Count("teams"))

    @admin.display(description="Local time now")
    def local_now(self, obj):
        return local_text(timezone.now(), obj.timezone)

    @admin.display(description="Open now?", boolean=True)
    def open_now(self, obj):
        try:
            return calendar_for_market(obj).is_open(timezone.now())
        except Exception:  # a malformed calendar must not break the list
            return None

    @admin.display(description="Hours")
    def hours_summary(self, obj):
        return week_summary(obj.hours)

    @admin.display(description="Holidays")
    def holidays(self, obj):
        if not obj.holiday_country:
            return "none"
        return "/".join(p for p in (obj.holiday_country, obj.holiday_subdivision) if p)

    @admin.display(description="Teams", ordering="team_total")
    def team_count(self, obj):
        return obj.team_total

    def save_model(self, request, obj, form, change):
        result = org_changes.save_market(
            obj, actor=request.user, reason=_reason(form, "edited in the admin")
        )
        if change and result.notes:
            self.message_user(
                request,
                f"The business calendar of {obj.code} changed: {result.replanned} open SLA "
                "timer(s) re-planned on the new calendar.",
                messages.SUCCESS,
            )


@admin.register(Team)
class TeamAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    team_path = "pk"
    secret_fields = ("teams_webhook_url",)  # a credential: ops managers and superusers only
    list_display = (
        "name",
        "slug",
        "market",
        "manager_name",
        "rep_count",
        "slack_channel_id",
        "has_teams_webhook",
    )
    list_filter = (market_filter("market"),)
    search_fields = ("slug", "name", "slack_channel_id")
    list_select_related = ("market",)
    prepopulated_fields = {"slug": ("name",)}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        managers = Rep.objects.filter(team=OuterRef("pk"), role=Role.MANAGER).values("name")[:1]
        reps = (
            Rep.objects.filter(team=OuterRef("pk"), active=True)
            .order_by()
            .values("team")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                manager=Subquery(managers),
                active_reps=Coalesce(Subquery(reps, output_field=IntegerField()), 0),
            )
        )

    @admin.display(description="Manager")
    def manager_name(self, obj):
        return obj.manager or "—"

    @admin.display(description="Active reps", ordering="active_reps")
    def rep_count(self, obj):
        return obj.active_reps

    @admin.display(description="Teams webhook", boolean=True)
    def has_teams_webhook(self, obj):
        return bool(obj.teams_webhook_url)

    def save_model(self, request, obj, form, change):
        obj._change_reason = "edited in the admin"
        super().save_model(request, obj, form, change)


class TimeOffInline(admin.TabularInline):
    model = TimeOff
    extra = 0
    fields = ("start", "end", "reason")
    ordering = ("-start",)
    verbose_name_plural = "time off (PTO), in UTC"


@admin.register(Rep)
class RepAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    team_path = "team"
    form = RepForm
    inlines = [TimeOffInline]
    list_display = (
        "name",
        "email",
        "team",
        "role",
        "active",
        "capacity",
        "open_leads",
        "local_now",
        "own_hours",
        "slack_user_id",
        "user",
    )
    list_filter = ("active", "role", market_filter("team__market"), team_filter("team"))
    search_fields = ("name", "email", "slack_user_id", "user__username")
    list_select_related = ("team__market", "user")
    readonly_fields = ("last_assigned_local", "own_hours")
    fieldsets = (
        (None, {"fields": ("name", "email", "user", "team", "role", "active")}),
        ("Routing", {"fields": ("capacity", "slack_user_id", "last_assigned_local")}),
        (
            "Working hours (empty = the market's)",
            {"fields": ("timezone", *(day_field_name(d) for d in hours_format.WEEKDAYS))},
        ),
        ("Why", {"fields": ("change_reason",)}),
    )

    def get_fieldsets(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return (
                (None, {"fields": ("name", "email", "user", "team", "role", "active")}),
                ("Routing", {"fields": ("capacity", "slack_user_id", "last_assigned_local")}),
                ("Working hours", {"fields": ("timezone", "own_hours")}),
            )
        return super().get_fieldsets(request, obj)

    def get_queryset(self, request):
        # One correlated count per row on the page (the partial index on open leads by owner);
        # an aggregate join would group the whole lead table.
        open_leads = (
            Lead.objects.filter(owner=OuterRef("pk"), state__in=sorted(OPEN_STATES))
            .order_by()
            .values("owner")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                open_lead_count=Coalesce(Subquery(open_leads, output_field=IntegerField()), 0)
            )
        )

    @admin.display(description="Open leads", ordering="open_lead_count")
    def open_leads(self, obj):
        return f"{obj.open_lead_count} / {obj.capacity}"

    @admin.display(description="Local time now")
    def local_now(self, obj):
        return local_text(timezone.now(), obj.timezone or obj.team.market.timezone, with_date=False)

    @admin.display(description="Last assigned")
    def last_assigned_local(self, obj):
        return local_html(obj.last_assigned_at, obj.timezone or obj.team.market.timezone)

    @admin.display(description="Own hours")
    def own_hours(self, obj):
        return week_summary(obj.hours) if obj.hours else "market's"

    def save_model(self, request, obj, form, change):
        result = org_changes.save_rep(
            obj, actor=request.user, reason=_reason(form, "edited in the admin")
        )
        if result.notes:
            obj.refresh_from_db()
            level = messages.WARNING if result.unassigned else messages.SUCCESS
            self.message_user(
                request,
                f"{obj.name} is now inactive: {result.reassigned} open lead(s) handed over, "
                f"{result.unassigned} left without an owner (their manager is told).",
                level,
            )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "team":
            kwargs["queryset"] = Team.objects.select_related("market")  # narrowed by the kit
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(TimeOff)
class TimeOffAdmin(ScopedAdminMixin, NoHistoryRevertMixin, SimpleHistoryAdmin):
    team_path = "rep__team"
    list_display = ("rep", "team", "start_local", "end_local", "reason", "current")
    list_filter = (team_filter("rep__team"), "start")
    search_fields = ("rep__name", "rep__email", "reason")
    list_select_related = ("rep__team__market",)
    date_hierarchy = "start"

    @admin.display(description="Team", ordering="rep__team__slug")
    def team(self, obj):
        return obj.rep.team

    def _tz(self, obj):
        return obj.rep.timezone or obj.rep.team.market.timezone

    @admin.display(description="Start (rep's local time)", ordering="start")
    def start_local(self, obj):
        return local_text(obj.start, self._tz(obj))

    @admin.display(description="End (rep's local time)", ordering="end")
    def end_local(self, obj):
        return local_text(obj.end, self._tz(obj))

    @admin.display(description="Now?", boolean=True)
    def current(self, obj):
        return obj.start <= timezone.now() < obj.end

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "rep":
            kwargs["queryset"] = Rep.objects.select_related("team")  # narrowed by the kit
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        obj._change_reason = "edited in the admin"
        super().save_model(request, obj, form, change)
