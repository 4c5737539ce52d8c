"""The signed-link lead page (SPEC §9): thin; the rules live in escalations/links.py."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages as flash
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from escalations import links
from escalations.explain import local_time, sla_status
from escalations.models import SlaTimer
from leadops.lifecycle import DISQUALIFIABLE, LifecycleError
from leadops.models import Lead
from teams.models import Rep


def _no_leak(response):
    # The token is in the URL: keep it out of referrers, caches and search indexes.
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _refusal(request, status: int, title: str, text: str):
    return _no_leak(
        render(request, "links/refused.html", {"title": title, "text": text}, status=status)
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def lead_page(request, token: str):
    try:
        rep_id, lead_id = links.read_token(token)
    except links.LinkExpired:
        return _refusal(
            request,
            410,
            "This link has expired",
            "Links in notifications work for a limited time. Open the lead from a "
            "newer message or from the admin.",
        )
    except links.LinkInvalid:
        return _refusal(
            request,
            403,
            "This link is not valid",
            "The link was changed or cut short. Open it again from the message.",
        )
    rep = Rep.objects.filter(pk=rep_id).first()
    lead = (
        Lead.objects.filter(pk=lead_id).select_related("market", "source", "team", "owner").first()
    )
    if rep is None or lead is None:
        return _refusal(
            request,
            404,
            "Nothing to show",
            "The lead or the person this link was made for no longer exists.",
        )

    status_code, error = 200, ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            activity = links.act(
                rep,
                lead.pk,
                action,
                reason=request.POST.get("reason", ""),
                notes=request.POST.get("notes", ""),
            )
        except links.LinkRefused as exc:
            status_code, error = 403, str(exc)
        except LifecycleError as exc:
            status_code, error = (400 if exc.field else 409), str(exc)
        else:
            local = timezone.localtime(activity.recorded_at, ZoneInfo(lead.market.timezone))
            flash.success(request, f"{activity.get_kind_display()} recorded at {local:%H:%M}.")
            return _no_leak(HttpResponseRedirect(request.path))
        lead.refresh_from_db()

    now = timezone.now()
    timer = SlaTimer.objects.filter(lead=lead, completed_at__isnull=True).first()
    if timer is not None:
        timer.lead = lead
    allowed = links.permission(rep, lead)
    context = {
        "lead": lead,
        "rep": rep,
        "status": sla_status(lead, timer, now),
        "since": local_time(lead.state_entered_at, ZoneInfo(lead.market.timezone), now),
        "allowed": allowed,
        "error": error,
        "can_disqualify": lead.state in DISQUALIFIABLE,
        "reason": request.POST.get("reason", "") if error else "",
    }
    return _no_leak(render(request, "links/lead.html", context, status=status_code))
