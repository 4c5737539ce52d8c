"""Custom admin pages hung off the model admins' `get_urls`: the policy matrix and the revert
form of a reassignment."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from escalations.admin_helpers import ReasonForm, local_text, object_form_page
from escalations.models import Reassignment
from escalations.permissions import NotAllowed, check_can_revert
from escalations.policies import effective_matrix
from leadops.lifecycle import FORWARD_PATH
from leadops.models import LeadState, Source
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
    markets = list(Market.objects.order_by("code"))
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


def revert_view(model_admin, request, object_id):
    """Revert one reassignment with a reason, through `revert_reassignment`."""
    from escalations.reassign import ReassignError, revert_reassignment

    if not model_admin.has_revert_permission(request):
        raise PermissionDenied
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
