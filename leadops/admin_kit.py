"""The admin kit shared by the admin classes of all four apps: who sees what (team-lead scoping,
in one place), read-only admins, local-time columns, the SLA status of a timer, pagination that
never counts a million rows, and the pages that ask for a reason or a small form first."""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.admin import helpers as admin_helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from simple_history.template_utils import HistoricalRecordContextHelper

from escalations import permissions
from escalations.explain import (
    STATUS_CHOICES,
    STATUS_LABELS,
    filter_by_status,
    hours_minutes,
    sla_status,
    status_code,
)
from escalations.models import SlaTimer
from leadops.models import Lead
from teams.models import Market, Rep, Team

# --- scope: what a user may see -----------------------------------------------------------------


def user_scope(request) -> permissions.Scope:
    """`permissions.scope_of` the request's user, computed once per request (it costs a query
    or two) and kept on the request."""
    scope = getattr(request, "_leadops_admin_scope", None)
    if scope is None:
        scope = request._leadops_admin_scope = permissions.scope_of(request.user)
    return scope


def scope_queryset(request, queryset, team_path: str = "team"):
    """The one place that narrows admin querysets (SPEC §10), by `permissions.scope_of`.
    `team_path` is the lookup from the model to the team's id (`team`, `lead__team`,
    `rep__team`, `pk`)."""
    return user_scope(request).filter(queryset, team_path)


def sees_secrets(request) -> bool:
    """Credentials (a team's Teams webhook URL) are shown to ops managers and superusers only,
    not even to the team's own lead (SPEC §10). Computed once per request."""
    shown = getattr(request, "_leadops_admin_sees_secrets", None)
    if shown is None:
        shown = request._leadops_admin_sees_secrets = permissions.is_ops_manager(request.user)
    return shown


def scoped_choices(request, model, queryset=None):
    """The rows of `model` a user may pick in a form (a lead's team or owner, a time off's
    rep, a market), or None when `model` is not team-owned."""
    scope = user_scope(request)
    queryset = model._default_manager.all() if queryset is None else queryset
    if model is Market:
        return scope.filter_markets(queryset, "pk")
    path = {Team: "pk", Rep: "team", Lead: "team"}.get(model)
    return None if path is None else scope.filter(queryset, path)


class _HistoryWithoutSecrets(HistoricalRecordContextHelper):
    """simple-history's change list on a history page, without the changes of secret fields."""

    hidden: frozenset[str] = frozenset()

    def context_for_delta_changes(self, delta):
        kept = [change for change in delta.changes if change.field not in self.hidden]
        return super().context_for_delta_changes(dataclasses.replace(delta, changes=kept))


class ScopedAdminMixin:
    """Who sees what in the admin, for every admin class of the four apps (SPEC §10;
    tests/test_admin_scope.py walks every admin URL as another team's lead):

    - rows narrowed to the user's teams (`get_queryset`, so lists, counts, actions and exports);
    - every object page (change, delete, history and its versions, and the custom pages, which
      call `scope_refusal`) refused with the reason for another team's object, 404 for none;
    - foreign-key choices (team, rep, lead, market) narrowed the same way;
    - `secret_fields` hidden from forms, history versions and history diffs for everyone but
      ops managers and superusers.

    `team_path` is the lookup from the row to its team's id (`team`, `lead__team`, `rep__team`,
    `pk`); `market_path` is set instead for rows shared by a market's teams (markets, policies;
    `market_shared` keeps the rows of no market); both None for reference rows that every team
    reads alike (sources, thresholds)."""

    team_path: str | None = "team"
    market_path: str | None = None
    market_shared = False
    secret_fields: tuple[str, ...] = ()

    def get_queryset(self, request):
        return self.scope_rows(request, super().get_queryset(request))

    def scope_rows(self, request, queryset):
        scope = user_scope(request)
        if self.market_path is not None:
            return scope.filter_markets(queryset, self.market_path, shared=self.market_shared)
        if self.team_path is not None:
            return scope.filter(queryset, self.team_path)
        return queryset

    # --- object pages -------------------------------------------------------------------------

    def scope_refusal(self, request, object_id):
        """None when the user may open this object; else the page saying why (403). Raises 404
        when there is no such object. simple-history's pages look objects up without
        `get_queryset` (and fall back to the history of deleted rows), hence this check first;
        the history of a deleted row is for those who see every team."""
        if user_scope(request).all_teams or (self.team_path is None and self.market_path is None):
            return None
        if not self.has_view_or_change_permission(request):
            # Nothing about the object (not even its team) for someone who may not see any.
            raise PermissionDenied(f"You have no access to {self.model._meta.verbose_name_plural}.")
        pk = unquote(str(object_id))
        try:
            if self.get_queryset(request).filter(pk=pk).exists():
                return None
            row = self.model._default_manager.filter(pk=pk).first()
        except (ValueError, TypeError, ValidationError):
            raise Http404(f"No such {self.model._meta.verbose_name}.") from None
        if row is None:
            raise Http404(f"No such {self.model._meta.verbose_name} among your team's records.")
        return refusal_page(self, request, self.why_not_yours(request, row))

    def why_not_yours(self, request, row) -> str:
        """E.g. "This lead belongs to India inside sales; you lead Berlin sales."""
        led = list(
            Team.objects.filter(pk__in=sorted(user_scope(request).team_ids))
            .order_by("name")
            .values_list("name", flat=True)
        )
        yours = f"you lead {', '.join(led)}" if led else "you lead no team"
        what = self.model._meta.verbose_name
        if self.market_path is not None:
            return f"This {what} belongs to a market none of your teams works in; {yours}."
        team_id = (
            self.model._default_manager.filter(pk=row.pk)
            .values_list(self.team_path, flat=True)
            .first()
        )
        team = Team.objects.filter(pk=team_id).values_list("name", flat=True).first()
        return f"This {what} belongs to {team or 'no team'}; {yours}."

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # The change and delete pages look the object up through the scoped `get_queryset`;
        # only when that finds nothing is it worth asking why (no extra query on the way in).
        refusal = self.scope_refusal(request, object_id)
        return refusal or super()._get_obj_does_not_exist_redirect(request, opts, object_id)

    def history_view(self, request, object_id, extra_context=None):
        return self.scope_refusal(request, object_id) or super().history_view(
            request, object_id, extra_context
        )

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        return self.scope_refusal(request, object_id) or super().history_form_view(
            request, object_id, version_id, extra_context
        )

    # --- forms ----------------------------------------------------------------------------------

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        narrowed = scoped_choices(request, db_field.related_model, kwargs.get("queryset"))
        if narrowed is not None:
            kwargs["queryset"] = narrowed
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def _hides_secrets(self, request) -> bool:
        return bool(self.secret_fields) and not sees_secrets(request)

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or ())
        if self._hides_secrets(request):
            exclude += [name for name in self.secret_fields if name not in exclude]
        return exclude

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if not self._hides_secrets(request):
            return fieldsets
        hidden = set(self.secret_fields)
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f not in hidden]})
            for name, options in fieldsets
        ]

    def get_historical_record_context_helper(self, request, historical_record):
        if not self._hides_secrets(request):
            return super().get_historical_record_context_helper(request, historical_record)
        helper = type(
            "HistoryWithoutSecrets",
            (_HistoryWithoutSecrets,),
            {"hidden": frozenset(self.secret_fields)},
        )
        return helper(self.model, historical_record)


def refusal_page(model_admin, request, message: str, *, status: int = 403):
    """A refusal that says why, in the admin's own page (not a bare 403)."""
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Not one of your team's",
        "message": message,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/refused.html", context, status=status)


def team_filter(team_path: str, title: str = "team"):
    """A team list filter that lists only the teams the user may see (a plain related filter
    would list every team, or scan a large table for the distinct ones)."""

    class TeamFilter(admin.SimpleListFilter):
        parameter_name = "team_id"

        def lookups(self, request, model_admin):
            teams = scope_queryset(request, Team.objects.select_related("market"), "pk")
            return [(str(t.pk), f"{t.name} ({t.market.code})") for t in teams.order_by("slug")]

        def queryset(self, request, queryset):
            if self.value():
                return queryset.filter(**{team_path: self.value()})
            return queryset

    TeamFilter.title = title
    return TeamFilter


def market_filter(market_path: str, title: str = "market"):
    """A market list filter that lists only the markets of the user's teams (same parameter
    as Django's related filter, so links keep working)."""

    class MarketFilter(admin.SimpleListFilter):
        parameter_name = f"{market_path}__id__exact"

        def lookups(self, request, model_admin):
            markets = user_scope(request).filter_markets(Market.objects.all(), "pk")
            return [(str(m.pk), f"{m.code} · {m.name}") for m in markets.order_by("code")]

        def queryset(self, request, queryset):
            if self.value():
                return queryset.filter(**{f"{market_path}__pk": self.value()})
            return queryset

    MarketFilter.title = title
    return MarketFilter


class ReadOnlyAdminMixin:
    """Rows that only the domain writes (timers, reassignments, the outbox, activities, the audit
    log): the admin lists and shows them, and never adds, changes or deletes one. A singleton
    that may be edited but not added or deleted (the thresholds) sets `change_allowed`."""

    change_allowed = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return self.change_allowed and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class NoHistoryRevertMixin:
    """simple-history's "revert to this version" saves an old row wholesale, around the domain
    functions, and its history form view saves on POST for anyone who may merely *view*
    history. Both are off: history is for reading, changes go through the change form."""

    def revert_disabled(self, request, obj=None):
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("Reverting from history is disabled; edit the object instead.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    # Every date of the history page in the object's zone (`zone_of`), like the rest of the
    # admin: when each version was saved, and the instants in its changes.

    def history_view(self, request, object_id, extra_context=None):
        request._leadops_history_zone = zone_of(self.get_object(request, unquote(object_id)))
        return super().history_view(request, object_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return LocalTimeHistoryHelper(
            self.model, historical_record, getattr(request, "_leadops_history_zone", None)
        )

    def render_history_view(self, request, template, context, **kwargs):
        tz = getattr(request, "_leadops_history_zone", None)
        for record in context.get("page_obj") or ():
            record.history_when = local_html(record.history_date, tz)
        return super().render_history_view(request, template, context, **kwargs)


class LocalTimeHistoryHelper(HistoricalRecordContextHelper):
    """simple-history's formatting of a change, with instants in local time."""

    def __init__(self, model, historical_record, tz_name):
        super().__init__(model, historical_record)
        self.tz_name = tz_name

    def prepare_delta_change_value(self, change, value):
        if isinstance(value, datetime):
            return local_text(value, self.tz_name)
        return super().prepare_delta_change_value(change, value)


# --- local time: one format for every instant in the admin ---------------------------------------
#
# `local_text` / `local_html` (and `local_column` for lists, the `admin_time` template tag for
# templates) show an instant as `Mon 2026-03-02 09:30 CET`: in the lead's market zone when a
# market applies, else in the viewer's zone (their rep's), else the site's zone (UTC).

_current_request: ContextVar = ContextVar("leadops_admin_request", default=None)


class ViewerZoneMiddleware:
    """Keeps the request at hand, so that an instant no market applies to is shown in the zone
    of whoever is looking, however deep in an admin display method (which sees only the row)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def viewer_rep(request):
    """The rep of whoever is looking (with their team and its market), once per request."""
    if not hasattr(request, "_leadops_viewer_rep"):
        user = getattr(request, "user", None)
        rep = None
        if user is not None and user.is_authenticated:
            rep = Rep.objects.select_related("team__market").filter(user=user).first()
            # `user.rep` (permissions.led_team_ids) then costs no query of its own.
            user._state.fields_cache["rep"] = rep
        request._leadops_viewer_rep = rep
    return request._leadops_viewer_rep


def viewer_zone(request=None) -> str:
    """The zone of whoever is looking (the current request's by default): their rep's zone (or
    their team's market's), else the site's zone."""
    request = request if request is not None else _current_request.get()
    rep = viewer_rep(request) if request is not None else None
    return rep.effective_timezone if rep is not None else settings.TIME_ZONE


def local_text(at: datetime | None, tz_name: str | None = None, *, with_date: bool = True) -> str:
    """`Mon 2026-03-02 09:30 IST` in `tz_name` (a market's zone; None: the viewer's); zones
    whose abbreviation is numeric (`+04`) show their IANA name (`... 09:30 Asia/Dubai`)."""
    if at is None:
        return "—"
    tz_name = tz_name or viewer_zone()
    local = at.astimezone(zone(tz_name))
    abbr = local.tzname() or ""
    label = abbr if abbr[:1].isalpha() else tz_name
    pattern = "%a %Y-%m-%d %H:%M" if with_date else "%a %H:%M"
    return f"{local.strftime(pattern)} {label}"


def zone_of(obj) -> str | None:
    """The zone an object's instants are shown in: its market's (a lead, a team, a policy of one
    market), its own (a market, a rep with their own hours), else None (the viewer's)."""
    if obj is None:
        return None
    if getattr(obj, "effective_timezone", None):  # a rep
        return obj.effective_timezone
    market = getattr(obj, "market", None)
    if market is not None:
        return market.timezone
    rep = getattr(obj, "rep", None)  # time off
    if rep is not None and getattr(rep, "effective_timezone", None):
        return rep.effective_timezone
    return getattr(obj, "timezone", None) or None


def local_html(at: datetime | None, tz_name: str | None = None, *, with_date: bool = True):
    """The local time, with the UTC instant as a tooltip."""
    if at is None:
        return "—"
    utc = at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:%S UTC")
    return format_html(
        '<span title="{}">{}</span>', utc, local_text(at, tz_name, with_date=with_date)
    )


def local_column(field: str, description: str, tz_of=lambda obj: None):
    """A list/detail column showing `field` in local time; `tz_of(obj)` names the zone (None:
    the viewer's)."""

    @admin.display(description=description, ordering=field)
    def show(self, obj):
        return local_html(getattr(obj, field), tz_of(obj))

    return show


def lead_link(lead):
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:leadops_lead_change", args=[lead.pk]), lead
    )


def duration_text(value: timedelta | None) -> str:
    """A business duration in hours and minutes (`explain.hours_minutes`): `40 h`, `3 h 05 min`."""
    return hours_minutes(value)


# --- SLA status of a lead, from its open timer ---------------------------------------------------

STATUS_COLOURS = {
    "on_track": "#2e7d32",
    "at_risk": "#b26a00",
    "breached": "#c62828",
    "reassigned": "#6a1b9a",
    "paused": "#546e7a",
    "no_sla": "#777",
}


def sla_status_html(timer: SlaTimer | None):
    code = status_code(timer)
    return format_html(
        '<span class="sla-status sla-{}" style="color:{};font-weight:bold">{}</span>',
        code,
        STATUS_COLOURS[code],
        STATUS_LABELS[code],
    )


def time_left_text(lead, timer: SlaTimer | None, now: datetime) -> str:
    """Business time to the breach, or how long it is overdue: the figure the messages give
    (`explain.sla_status`)."""
    if timer is None:
        return "—"
    return sla_status(lead, timer, now).time_left


class SlaStatusFilter(admin.SimpleListFilter):
    title = "SLA status"
    parameter_name = "sla"

    def lookups(self, request, model_admin):
        return STATUS_CHOICES

    def queryset(self, request, queryset):
        if self.value() in STATUS_LABELS:
            return filter_by_status(queryset, self.value())
        return queryset


def audit_summary(event) -> str:
    """The facts of an audit event worth a glance, from its details."""
    details = event.details or {}
    parts = []
    if details.get("from_rep") or details.get("to_rep"):
        parts.append(f"{details.get('from_rep') or 'nobody'} → {details.get('to_rep')}")
    if details.get("restored_rep"):
        parts.append(f"back to {details['restored_rep']} from {details.get('taken_from_rep')}")
    if details.get("from_state") and details.get("to_state"):
        parts.append(f"{details['from_state']} → {details['to_state']}")
    for key in (
        *("cause", "outcome", "why", "reason", "channel", "error"),
        *("slack_user", "action", "result", "detail"),  # slack_action
    ):
        value = details.get(key)
        if value:
            parts.append(f"{key}: {value}")
    if event.elapsed is not None:
        parts.append(f"elapsed {duration_text(event.elapsed)} (business)")
    return " · ".join(str(p) for p in parts)


# --- pagination without COUNT(*) of a huge table ------------------------------------------------


class EstimatedCountPaginator(Paginator):
    """Never counts a million rows. Unfiltered on PostgreSQL: the planner's estimate
    (`pg_class.reltuples`, kept fresh by autovacuum) once the table is large. Otherwise a count
    that stops at `count_cap` rows (`SELECT COUNT(*) FROM (... LIMIT cap)`), which an index
    answers quickly."""

    # 10,000 rows = 200 pages of 50: past that, filtering beats paging, and a capped count over a
    # filtered join stays well under 100 ms on PostgreSQL.
    estimate_from = 10_000
    count_cap = 10_000

    # From this many rows skipped, a page is read as "the ids of the page (skipping on the
    # ordering's index alone, an index-only scan), then those rows": page 500 of a million
    # leads costs a few ms instead of reading 25,000 rows to throw them away.
    deferred_from = 1000

    is_estimate = False
    is_capped = False

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        if bottom < self.deferred_from or not isinstance(rows, QuerySet):
            return self._get_page(rows[bottom:top], number, self)
        ids = rows.prefetch_related(None).values("pk")[bottom:top]
        return self._get_page(rows.filter(pk__in=ids), number, self)

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        connection = connections[qs.db]
        if connection.vendor == "postgresql" and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [connection.ops.quote_name(qs.model._meta.db_table)],
                )
                row = cursor.fetchone()
            estimate = int(row[0]) if row and row[0] is not None else -1
            if estimate >= self.estimate_from:
                self.is_estimate = True
                return estimate
        counted = qs.order_by()[: self.count_cap + 1].count()
        if counted > self.count_cap:
            self.is_capped = True
            return self.count_cap
        return counted


class LargeTableAdminMixin:
    """For the lead, timer, notification and audit lists (one row per lead and step)."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    # Filter counts ("Show counts") would count every option over the whole table.
    show_facets = admin.ShowFacets.NEVER


# --- actions that ask for a reason first ---------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Stored in the audit log and shown to the people concerned.",
    )


def reason_action(modeladmin, request, queryset, *, title: str, intro: str, submit: str, apply):
    """The intermediate page of a changelist action that needs a reason (like Django's delete
    confirmation). `apply(queryset, reason)` runs once the reason is given."""
    if request.POST.get("post") == "yes":
        form = ReasonForm(request.POST)
        if form.is_valid():
            apply(queryset, form.cleaned_data["reason"])
            return None
    else:
        form = ReasonForm()
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "submit_label": submit,
        "form": form,
        "objects": list(queryset[:200]),
        "total": queryset.count(),
        "opts": opts,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": admin_helpers.ACTION_CHECKBOX_NAME,
        "selected": request.POST.getlist(admin_helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "querystring": request.GET.urlencode(),
    }
    return TemplateResponse(request, "admin/action_with_reason.html", context)


def object_form_page(
    modeladmin, request, obj, *, title: str, form, submit: str, intro="", extra=None
):
    """A small form page about one object (change state, hold, reassign, revert...)."""
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "form": form,
        "submit_label": submit,
        "original": obj,
        "opts": opts,
        "now": timezone.now(),
        **(extra or {}),
    }
    return TemplateResponse(request, "admin/object_form.html", context)
