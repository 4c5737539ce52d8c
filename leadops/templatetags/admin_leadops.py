"""Template tags of the admin: the status block on the index (SPEC §10, `escalations.status`)
and one way of showing an instant (`admin_kit.local_html`) for templates."""

from __future__ import annotations

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from escalations import status as ops_status
from leadops.admin_kit import local_html, user_scope, viewer_rep, viewer_zone, zone_of
from teams.models import Team

register = template.Library()


@register.inclusion_tag("admin/status_block.html", takes_context=True)
def status_block(context):
    """For ops managers (every team) and team leads (their teams); nobody else sees it."""
    request = context["request"]
    rep = viewer_rep(request)  # first: the scope below reuses it
    scope = user_scope(request)
    if not scope.all_teams and not scope.team_ids:
        return {"show": False}
    now = timezone.now()
    status = ops_status.collect(now=now, scope=scope)
    run = status.last_run
    zone = viewer_zone(request)
    leads = reverse("admin:leadops_lead_changelist")
    notifications = reverse("admin:escalations_notification_changelist")
    if scope.all_teams:
        teams = []
    elif rep is not None and scope.team_ids == {rep.team_id}:
        teams = [rep.team.name]  # a team lead's own team, loaded with the rep
    else:
        teams = list(Team.objects.filter(pk__in=scope.team_ids).values_list("name", flat=True))
    return {
        "show": True,
        "status": status,
        "teams": ", ".join(sorted(teams)),
        "last_when": local_html(run.finished_at, zone) if run else None,
        "last_ms": round(run.duration.total_seconds() * 1000) if run else None,
        "last_age": ops_status.age_text(now - run.finished_at) if run else None,
        "fired": ops_status.fired_text(status.fired) if run else "",
        "interval": settings.SWEEP_INTERVAL_MINUTES,
        "at_risk_url": f"{leads}?sla=at_risk",
        "breached_url": f"{leads}?sla=breached",
        "pending_url": f"{notifications}?status__exact=pending",
        "failed_url": f"{notifications}?status__exact=failed",
        "healthz_url": "/healthz",
    }


@register.simple_tag(takes_context=True)
def admin_time(context, at, tz_name=""):
    """An instant with its zone: `tz_name`, else the zone of the page's object (`zone_of`: its
    market's), else the viewer's."""
    tz = tz_name or zone_of(context.get("object")) or viewer_zone(context.get("request"))
    return local_html(at, tz)
