"""The small form pages on a lead's change page (change state, hold, resume, reassign, log an
activity), as one table: each row names its form and the domain verb it calls. A refusal of the
verb comes back as a form error; nothing here changes a lead itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone

from escalations.reassign import ReassignError, reassign_lead
from escalations.timers import open_timer
from leadops import lifecycle
from leadops.actors import resolve_actor
from leadops.admin_forms import (
    ActivityForm,
    HoldForm,
    ReassignForm,
    ResumeForm,
    TransitionForm,
    add_domain_error,
)
from leadops.admin_kit import object_form_page, time_left_text


@dataclass(frozen=True)
class LeadAction:
    name: str  # the URL segment and the URL name `admin:leadops_lead_<name>`
    label: str  # the button on the change page
    title: str  # the page title; {lead} is the lead
    submit: str
    intro: str
    form: Callable  # (lead, data) -> the form
    run: Callable  # (lead, cleaned_data, user) -> the message, or (message, level)
    offered: Callable  # (lead) -> whether the button shows


def _transition(lead, data, user) -> str:
    before = lead.state
    lifecycle.transition(lead, data["to_state"], actor=user, reason=data["reason"])
    return f"{lead} moved from {before} to {lead.state}."


def _hold(lead, data, user) -> str:
    lifecycle.put_on_hold(lead, actor=user, reason=data["reason"], resume_at=data.get("resume_at"))
    return f"{lead} is on hold; its SLA clock is paused."


def _resume(lead, data, user) -> str:
    lifecycle.resume(lead, actor=user, reason=data["reason"])
    return f"{lead} resumed; its SLA clock runs again."


def _reassign(lead, data, user) -> str:
    # reassign_lead locks and re-reads the lead: the sweep may be reassigning it right now.
    reassign_lead(lead, data["to_rep"], cause="manual", actor=user)
    return f"{lead} reassigned to {data['to_rep']}."


def _activity(lead, data, user):
    state_before, owner = lead.state, lead.owner
    activity = lifecycle.record_activity(
        lead,
        data["kind"],
        actor=user,
        occurred_at=data.get("occurred_at"),
        notes=data["notes"],
        reason=data["reason"],
    )
    logged = f"{activity.get_kind_display()} logged on {lead}"
    if activity.counted_as_progress:
        return f"{logged}. It counted as progress."
    why = lifecycle.why_not_progress(state_before, activity.kind, resolve_actor(user), owner)
    timer = open_timer(lead, lock=False)
    if timer is None:
        clock = "No SLA runs on this lead."
    elif timer.paused_at is not None:
        clock = "Its SLA stays paused (on hold)."
    else:
        clock = f"The SLA keeps running: {time_left_text(lead, timer, timezone.now())}."
    return (
        f"{logged}: it is recorded, but it is not progress ({why}). {clock}",
        messages.WARNING,
    )


def _open(lead) -> bool:
    return not lead.is_closed


LEAD_ACTIONS = (
    LeadAction(
        "transition",
        "Change state…",
        "Change the state of {lead}",
        "Change state",
        "Only the moves the lifecycle allows from this state are offered.",
        lambda lead, data: TransitionForm(lead, data),
        _transition,
        _open,
    ),
    LeadAction(
        "activity",
        "Log activity…",
        "Log an activity on {lead}",
        "Log activity",
        "Only the owner's outbound attempts (or a disqualification) count as progress in NEW.",
        lambda lead, data: ActivityForm(lead, data),
        _activity,
        lambda lead: True,
    ),
    LeadAction(
        "hold",
        "Put on hold…",
        "Put {lead} on hold",
        "Put on hold",
        "Waiting on the customer: the SLA clock pauses until the hold ends.",
        lambda lead, data: HoldForm(lead, data),
        _hold,
        lambda lead: _open(lead) and not lead.on_hold,
    ),
    LeadAction(
        "resume",
        "Resume SLA…",
        "Resume {lead}",
        "Resume",
        "The SLA clock restarts with the business time that was left.",
        lambda lead, data: ResumeForm(data),
        _resume,
        lambda lead: _open(lead) and lead.on_hold,
    ),
    LeadAction(
        "reassign",
        "Reassign…",
        "Reassign {lead}",
        "Reassign",
        "",
        lambda lead, data: ReassignForm(lead, data),
        _reassign,
        _open,
    ),
)
ACTIONS_BY_NAME = {action.name: action for action in LEAD_ACTIONS}
DOMAIN_ERRORS = (lifecycle.LifecycleError, ReassignError)


class LeadActionsMixin:
    """For the lead admin: the URLs, the buttons and the one view behind them."""

    def get_urls(self):
        custom = [
            path(
                f"<path:object_id>/{action.name}/",
                self.admin_site.admin_view(self.lead_action_view),
                {"action": action.name},
                name=f"leadops_lead_{action.name}",
            )
            for action in LEAD_ACTIONS
        ]
        return custom + super().get_urls()

    def lead_actions(self, request, lead) -> list[dict]:
        if not self.has_change_permission(request, lead):
            return []
        return [
            {"url": reverse(f"admin:leadops_lead_{a.name}", args=[lead.pk]), "label": a.label}
            for a in LEAD_ACTIONS
            if a.offered(lead)
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        lead = self.get_object(request, unquote(object_id))
        extra_context = {
            **(extra_context or {}),
            "lead_actions": self.lead_actions(request, lead) if lead else [],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def lead_action_view(self, request, object_id, action: str):
        spec = ACTIONS_BY_NAME[action]
        refusal = self.scope_refusal(request, object_id)
        if refusal is not None:
            return refusal
        lead = self.get_object(request, unquote(object_id))
        if lead is None:
            raise Http404("No such lead, or not one of your team's.")
        if not self.has_change_permission(request, lead):
            raise PermissionDenied(
                "You may view this lead but not change it; ask its team lead or an ops manager."
            )
        form = spec.form(lead, request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                done = spec.run(lead, form.cleaned_data, request.user)
            except DOMAIN_ERRORS as exc:
                add_domain_error(form, exc)
            else:
                text, level = done if isinstance(done, tuple) else (done, messages.SUCCESS)
                self.message_user(request, text, level)
                return HttpResponseRedirect(reverse("admin:leadops_lead_change", args=[lead.pk]))
        return object_form_page(
            self,
            request,
            lead,
            title=spec.title.format(lead=lead),
            form=form,
            submit=spec.submit,
            intro=spec.intro,
            extra={"summary": self.lead_summary(lead)},
        )
