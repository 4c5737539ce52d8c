"""The signed-link lead page (SPEC §9): thin; the rules live in escalations/links.py (tokens and
form nonces) and escalations/actions.py (who may act, what an action records, once per form).

CSRF: the page keeps Django's CSRF check and sends `Referrer-Policy: same-origin`. Under
`no-referrer` Chromium posts the page's own forms with `Origin: null`, which Django's origin check
refuses ("Origin checking failed - null"); `same-origin` lets the browser send the real Origin
(and Referer) to this site only, so the token in the URL still never leaves it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.contrib import messages as flash
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from escalations import actions, links
from escalations.explain import duration, explain, local_time, open_timer_of
from leadops.lifecycle import DISQUALIFIABLE, LifecycleError
from leadops.models import Lead
from teams.models import Rep

FORMS = ("call", "email", "disqualify")


def _no_leak(response):
    # The token is in the URL: keep it out of other sites' referrers, caches and search indexes.
    response["Referrer-Policy"] = "same-origin"
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
    rep = Rep.objects.filter(pk=rep_id).select_related("team").first()
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
        try:
            nonce = links.read_form_nonce(request.POST.get("nonce", ""), rep, lead)
            outcome = actions.act_by_link(
                rep,
                lead.pk,
                request.POST.get("action", ""),
                nonce=nonce,
                reason=request.POST.get("reason", ""),
                notes=request.POST.get("notes", ""),
            )
        except links.LinkInvalid:
            status_code = 400
            error = "This form is incomplete or out of date: nothing was recorded. Try again."
        except actions.Refused as exc:
            status_code, error = 403, str(exc)
        except LifecycleError as exc:
            status_code, error = (400 if exc.field else 409), str(exc)
        else:
            if outcome.recorded:
                flash.success(request, f"{outcome.summary}.")
            else:
                flash.warning(
                    request,
                    f"This form was already sent, so nothing new was recorded: {outcome.summary}.",
                )
            return _no_leak(HttpResponseRedirect(request.path))
        lead.refresh_from_db()

    now = timezone.now()
    allowed = actions.permission(rep, lead)
    context = {
        "lead": lead,
        "rep": rep,
        "allowed": allowed,
        "error": error,
        "can_disqualify": lead.state in DISQUALIFIABLE,
        "reason": request.POST.get("reason", "") if error else "",
        "nonces": {form: links.make_form_nonce(rep, lead) for form in FORMS}
        if allowed.allowed
        else {},
        **_sla_facts(lead, now),
    }
    return _no_leak(render(request, "links/lead.html", context, status=status_code))


def _sla_facts(lead, now) -> dict:
    """The "explain SLA" facts (escalations/explain.py), in the market's local time."""
    tz = ZoneInfo(lead.market.timezone)
    facts = explain(lead, now=now, timer=open_timer_of(lead))

    def local(instant) -> str:
        return f"{local_time(instant, tz, now)} {instant.astimezone(tz).tzname()}"

    context = {
        "status": facts.status,
        "status_class": facts.status.label.replace(" ", "-"),
        "since": local(lead.state_entered_at),
        "timezone": lead.market.timezone,
        "timer": facts.timer,
    }
    timer = facts.timer
    if timer is not None:
        context.update(
            {
                "window": f"{timer.window} on the {timer.get_clock_display().lower()} clock",
                "window_time": duration(timer.window_business),
                "started": local(timer.started_at),
                "elapsed": duration(facts.elapsed),
                "paused_since": local(timer.paused_at) if timer.paused_at else "",
                "stages": [
                    {
                        "name": stage.name.capitalize(),
                        "percent": stage.percent,
                        "at": local(stage.at),
                        "reached": stage.reached,
                    }
                    for stage in facts.stages
                ],
            }
        )
    return context
