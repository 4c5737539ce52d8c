"""Request and response shapes. Serializers check types and shapes only (a known code, a text
without control characters, an instant with an offset); what is allowed is decided by the domain
verbs the views call, whose refusals come back as 400 (with the field) or 409."""

from __future__ import annotations

import copy
from datetime import UTC

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditKind
from escalations.api.fields import AwareDateTimeField, NaturalKeyField, Text
from escalations.explain import STATUS_CHOICES, Explanation, status_code
from escalations.models import (
    Clock,
    MessageKind,
    NotificationStatus,
    Persona,
    ReassignmentCause,
    Stage,
)
from leadops.models import ActivityKind, LeadState, Source
from teams.models import Market, Rep, Team


def _seconds(value) -> int | None:
    return None if value is None else int(value.total_seconds())


def _instant(value) -> str | None:
    """Like every other date-time of the API (UTC, `Z`): what DRF's DateTimeField writes,
    without its per-value time zone lookups (a page of leads has 400 of them)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class Input(serializers.Serializer):
    """A request's shape: plain fields only (no nested serializer). DRF rebuilds every declared
    field, validators included, for each request (`copy.deepcopy`), a tenth of a lead's intake
    time; a shallow copy per request is enough, as binding sets only the copy's own attributes
    and nothing changes a field's validators or messages afterwards."""

    def get_fields(self):
        return {name: copy.copy(field) for name, field in self._declared_fields.items()}


# --- leads ---------------------------------------------------------------------------------------


class LeadCreate(Input):
    name = Text(max_length=200)
    company = Text(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True, default="")
    phone = Text(max_length=40, required=False, allow_blank=True, default="")
    market = NaturalKeyField(model=Market, key="code", help_text="Market code, e.g. `DE`.")
    source = NaturalKeyField(model=Source, key="code", help_text="Source code.")
    team = NaturalKeyField(model=Team, key="slug", help_text="Team slug (of that market).")
    owner = NaturalKeyField(
        model=Rep,
        key="email",
        required=False,
        allow_null=True,
        default=None,
        help_text="The owner's email; omitted: the lead is routed to an available rep.",
    )
    external_id = Text(
        max_length=100,
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="Your id; posting the same one again returns the first lead (200).",
    )


class SlaSerializer(serializers.Serializer):
    """The lead's SLA from `escalations.explain.explain`, the admin's "explain SLA" panel."""

    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    label = serializers.CharField(help_text="on track, at risk, breached, paused, no SLA, closed")
    phrase = serializers.CharField(help_text='e.g. "SLA breach in 12 minutes"')
    policy_id = serializers.IntegerField(allow_null=True)
    policy_version = serializers.IntegerField(allow_null=True)
    clock = serializers.ChoiceField(choices=Clock.choices, allow_null=True)
    window = serializers.CharField(allow_null=True, help_text="90m, 4h or 2bd")
    stage = serializers.ChoiceField(choices=Stage.choices, allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    warn_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)
    reassign_at = serializers.DateTimeField(allow_null=True)
    business_seconds_elapsed = serializers.IntegerField(allow_null=True)
    business_seconds_left = serializers.IntegerField(
        allow_null=True, help_text="Business time left before the breach; negative when overdue."
    )
    paused = serializers.BooleanField()
    paused_seconds_total = serializers.IntegerField(allow_null=True)
    stale = serializers.BooleanField(help_text="A newer policy (or version) matches now.")

    def to_representation(self, instance: Explanation) -> dict:
        timer = instance.timer
        return {
            "status": instance.code,
            "label": instance.status.label,
            "phrase": instance.status.phrase,
            "policy_id": timer.policy_id if timer else None,
            "policy_version": timer.policy_version if timer else None,
            "clock": timer.clock if timer else None,
            "window": timer.window if timer else None,
            "stage": timer.stage if timer else None,
            "started_at": _instant(timer.started_at) if timer else None,
            "warn_at": _instant(timer.warn_at) if timer else None,
            "due_at": _instant(timer.due_at) if timer else None,
            "reassign_at": _instant(timer.reassign_at) if timer else None,
            "business_seconds_elapsed": _seconds(instance.elapsed),
            "business_seconds_left": _seconds(instance.remaining),
            "paused": bool(timer and timer.paused_at),
            "paused_seconds_total": _seconds(instance.paused_total),
            "stale": instance.stale,
        }


class LeadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    company = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    market = serializers.CharField(source="market.code")
    source = serializers.CharField(source="source.code")
    team = serializers.CharField(source="team.slug")
    owner = serializers.CharField(source="owner.email", allow_null=True)
    state = serializers.ChoiceField(choices=LeadState.choices)
    state_entered_at = serializers.DateTimeField()
    on_hold = serializers.BooleanField()
    hold_reason = serializers.CharField()
    hold_until = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    sla_status = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ChoiceField(choices=STATUS_CHOICES))
    def get_sla_status(self, lead) -> str:
        """From the open timers prefetched as `open_timers` (lists) or the explanation."""
        explanation = getattr(lead, "explanation", None)
        if explanation is not None:
            return explanation.code
        timers = getattr(lead, "open_timers", None) or []
        return status_code(timers[0] if timers else None)

    def to_representation(self, lead) -> dict:
        # The fields above, written out: a page of 100 leads through DRF's per-field machinery
        # costs several times this (the list's hot path; a test keeps both in step).
        owner = lead.owner
        return {
            "id": lead.pk,
            "external_id": lead.external_id,
            "name": lead.name,
            "company": lead.company,
            "email": lead.email,
            "phone": lead.phone,
            "market": lead.market.code,
            "source": lead.source.code,
            "team": lead.team.slug,
            "owner": owner.email if owner is not None else None,
            "state": lead.state,
            "state_entered_at": _instant(lead.state_entered_at),
            "on_hold": lead.on_hold,
            "hold_reason": lead.hold_reason,
            "hold_until": _instant(lead.hold_until),
            "created_at": _instant(lead.created_at),
            "updated_at": _instant(lead.updated_at),
            "sla_status": self.get_sla_status(lead),
        }


class LeadDetailSerializer(LeadSerializer):
    sla = SlaSerializer(source="explanation")

    def to_representation(self, lead) -> dict:
        return {**super().to_representation(lead), "sla": SlaSerializer(lead.explanation).data}


class LeadQuery(Input):
    state = serializers.ChoiceField(choices=LeadState.choices, required=False)
    market = NaturalKeyField(model=Market, key="code", required=False)
    team = NaturalKeyField(model=Team, key="slug", required=False)
    owner = NaturalKeyField(model=Rep, key="email", required=False)
    sla_status = serializers.ChoiceField(choices=STATUS_CHOICES, required=False)
    updated_since = AwareDateTimeField(required=False, help_text="Changed at or after this.")
    external_id = Text(max_length=100, required=False)


# --- lead actions --------------------------------------------------------------------------------


class ActivityCreate(Input):
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    occurred_at = AwareDateTimeField(
        required=False, help_text="When it happened (default now); not in the future."
    )
    actor = NaturalKeyField(
        model=Rep,
        key="email",
        required=False,
        allow_null=True,
        default=None,
        help_text="The rep who did it, by email (an outbound attempt counts only from the owner).",
    )
    notes = Text(multiline=True, max_length=10_000, required=False, allow_blank=True, default="")
    reason = Text(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required for `disqualify`.",
    )


class ActivitySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = serializers.IntegerField(source="lead_id")
    kind = serializers.ChoiceField(choices=ActivityKind.choices)
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor.email", allow_null=True)
    actor_name = serializers.CharField()
    notes = serializers.CharField()
    reason = serializers.CharField()
    counted_as_progress = serializers.BooleanField()
    lead_state = serializers.ChoiceField(
        choices=LeadState.choices, source="lead.state", help_text="The lead's state after it."
    )


class TransitionCreate(Input):
    to_state = serializers.ChoiceField(choices=LeadState.choices)
    reason = Text(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="Required for UNQUALIFIED.",
    )


class HoldCreate(Input):
    reason = Text(max_length=200, required=False, allow_blank=True, default="")
    resume_at = AwareDateTimeField(
        required=False, allow_null=True, default=None, help_text="Resume by itself then."
    )


class ResumeCreate(Input):
    reason = Text(max_length=300, required=False, allow_blank=True, default="")


# --- the log: audit events, notifications, reassignments ------------------------------------------


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=AuditKind.choices)
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    actor_name = serializers.CharField()
    correlation_id = serializers.CharField()
    lead = serializers.IntegerField(source="lead_id", allow_null=True)
    team = serializers.IntegerField(source="team_id", allow_null=True)
    timer = serializers.IntegerField(source="timer_id", allow_null=True)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    lead_label = serializers.CharField()
    owner_name = serializers.CharField()
    state = serializers.CharField()
    policy_id = serializers.IntegerField(allow_null=True)
    policy_version = serializers.IntegerField(allow_null=True)
    thresholds = serializers.DictField(allow_null=True)
    window = serializers.CharField()
    elapsed_seconds = serializers.SerializerMethodField(help_text="Business time elapsed.")
    stage_due_at = serializers.DateTimeField(allow_null=True)
    details = serializers.DictField()

    def get_elapsed_seconds(self, event) -> int | None:
        return _seconds(event.elapsed)


class AuditQuery(Input):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=AuditKind.choices, required=False)
    since = AwareDateTimeField(required=False, help_text="Occurred at or after this.")
    until = AwareDateTimeField(required=False, help_text="Occurred before this.")


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    persona = serializers.ChoiceField(choices=Persona.choices)
    lead = serializers.IntegerField(source="lead_id")
    timer = serializers.IntegerField(source="timer_id", allow_null=True)
    stage = serializers.CharField()
    recipient = serializers.CharField(source="recipient.email", allow_null=True)
    team = serializers.CharField(source="team.slug")
    status = serializers.ChoiceField(choices=NotificationStatus.choices)
    channel = serializers.CharField()
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    last_error = serializers.CharField()
    provider_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class NotificationQuery(Input):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=NotificationStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=MessageKind.choices, required=False)


class CandidateSerializer(serializers.Serializer):
    rep_id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.CharField()
    load = serializers.IntegerField(allow_null=True)
    capacity = serializers.IntegerField()
    reason = serializers.CharField(allow_null=True, help_text="Why passed over; null if chosen.")
    label = serializers.CharField()


class ReassignmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    lead = serializers.IntegerField(source="lead_id")
    state = serializers.ChoiceField(choices=LeadState.choices)
    from_rep = serializers.CharField(source="from_rep.email", allow_null=True)
    to_rep = serializers.CharField(source="to_rep.email")
    cause = serializers.ChoiceField(choices=ReassignmentCause.choices)
    policy_id = serializers.IntegerField(source="policy_id_used", allow_null=True)
    policy_version = serializers.IntegerField(allow_null=True)
    at = serializers.DateTimeField()
    actor_name = serializers.CharField()
    candidates = CandidateSerializer(many=True)
    reverted = serializers.BooleanField(source="is_reverted")
    reverted_at = serializers.DateTimeField(allow_null=True)
    reverted_by_name = serializers.CharField()
    revert_reason = serializers.CharField()


class ReassignmentQuery(Input):
    lead = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    cause = serializers.ChoiceField(choices=ReassignmentCause.choices, required=False)
    reverted = serializers.BooleanField(required=False)


class RevertCreate(Input):
    reason = Text(max_length=300, help_text="Why the reassignment is reverted.")


# --- the org file ---------------------------------------------------------------------------------


class OrgQuery(Input):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Validate and report, write nothing."
    )


class OrgLoadReport(serializers.Serializer):
    dry_run = serializers.BooleanField()
    created = serializers.DictField(child=serializers.IntegerField())
    updated = serializers.DictField(child=serializers.IntegerField())
    unchanged = serializers.DictField(child=serializers.IntegerField())
    side_effects = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()
