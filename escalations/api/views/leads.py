"""Leads: intake (idempotent by `external_id`), the list with its filters, one lead with its SLA,
and the lifecycle verbs (activities, transitions, hold, resume)."""

from __future__ import annotations

from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from escalations.api.errors import responses
from escalations.api.pagination import KeysetPagination
from escalations.api.serializers import (
    ActivityCreate,
    ActivitySerializer,
    HoldCreate,
    LeadCreate,
    LeadDetailSerializer,
    LeadQuery,
    LeadSerializer,
    ResumeCreate,
    TransitionCreate,
)
from escalations.api.views.base import ApiView, query
from escalations.explain import explain, filter_by_status
from escalations.models import SlaTimer
from leadops import lifecycle
from leadops.actors import Actor, resolve_actor
from leadops.models import Lead

TAGS = ["leads"]
READ = "leadops.view_lead"
WRITE = "leadops.feed_leads"
LIST_ERRORS = responses(400, 401, 403, 406, 429)
ONE_ERRORS = responses(401, 403, 404, 406, 429)
ACTION_ERRORS = responses(400, 401, 403, 404, 406, 409, 413, 415, 429)


def example(name: str, value: dict) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


NEW_LEAD = example(
    "A lead from a web form",
    {
        "name": "Aisha Al-Mansoori",
        "company": "Emirates Group",
        "email": "aisha@example.com",
        "phone": "+971 4 555 0100",
        "market": "IN",
        "source": "paid_social",
        "team": "in-inside",
        "owner": "asha@demo.leadops",
        "external_id": "crm-1042",
    },
)


def leads():
    return Lead.objects.select_related("market", "source", "team", "owner")


# The columns `LeadSerializer` reads, and those `explain.status_code` reads of an open timer.
LIST_FIELDS = [
    *("id", "external_id", "name", "company", "email", "phone", "state", "state_entered_at"),
    *("on_hold", "hold_reason", "hold_until", "created_at", "updated_at"),
    *("market__code", "source__code", "team__slug", "owner__email"),
]
STATUS_FIELDS = ["id", "lead_id", "paused_at", "stage", "auto_reassign_count"]


def detail(lead: Lead, now, **known) -> dict:
    """The lead with its SLA explained (the admin's "explain SLA" facts); `known`: its open
    `timer` when the caller has it (None: it has none)."""
    lead.explanation = explain(lead, now=now, **known)
    return LeadDetailSerializer(lead).data


def filter_leads(queryset, filters: dict):
    if "state" in filters:
        queryset = queryset.filter(state=filters["state"])
    for name in ("market", "team", "owner"):
        if name in filters:
            queryset = queryset.filter(**{f"{name}_id": filters[name].pk})
    if "sla_status" in filters:
        queryset = filter_by_status(queryset, filters["sla_status"])
    if "updated_since" in filters:
        queryset = queryset.filter(updated_at__gte=filters["updated_since"])
    if "external_id" in filters:
        queryset = queryset.filter(external_id=filters["external_id"])
    return queryset


class LeadList(ApiView):
    required_perms = {"GET": READ, "POST": WRITE}
    pagination_class = KeysetPagination

    @extend_schema(
        tags=TAGS,
        operation_id="leads_list",
        summary="List leads (newest first)",
        parameters=[LeadQuery],
        responses={200: LeadSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        filters = query(LeadQuery, request)
        # Only what a row of the list shows: a page builds 100 leads, their market, source,
        # team and owner, and their open timers, and the ORM's cost grows with every column.
        open_timers = SlaTimer.objects.filter(completed_at__isnull=True).only(*STATUS_FIELDS)
        queryset = (
            filter_leads(self.scoped(leads()), filters)
            .only(*LIST_FIELDS)
            .prefetch_related(Prefetch("timers", queryset=open_timers, to_attr="open_timers"))
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, self)
        return paginator.get_paginated_response(LeadSerializer(page, many=True).data)

    @extend_schema(
        tags=TAGS,
        operation_id="leads_create",
        summary="Create a lead (idempotent by external_id)",
        description=(
            "Creates a NEW lead and starts its SLA timer; without `owner` the lead is routed to "
            "an available rep of its team. With an `external_id` seen before, nothing is "
            "created and the existing lead comes back with 200 (also under concurrent requests)."
        ),
        request=LeadCreate,
        examples=[NEW_LEAD],
        responses={
            201: OpenApiResponse(LeadDetailSerializer, description="Created."),
            200: OpenApiResponse(LeadDetailSerializer, description="Existing (external_id)."),
            **responses(400, 401, 403, 406, 413, 415, 429),
        },
    )
    def post(self, request):
        serializer = LeadCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if not self.team_scope.includes(data["team"].pk):
            raise PermissionDenied(f"You may not create leads for team {data['team'].slug}.")
        lead, created = lifecycle.get_or_create_lead(**data, actor=request.user)
        if not created:  # found by external_id: as stored, not as sent
            return Response(detail(leads().get(pk=lead.pk), timezone.now()), status=200)
        # Its market, source, team and owner are loaded, its timer was just started.
        body = detail(lead, timezone.now(), timer=lead.started_timer)
        location = reverse("api-lead", args=[lead.pk])
        return Response(body, status=201, headers={"Location": location})


class LeadDetail(ApiView):
    required_perms = {"GET": READ}

    @extend_schema(
        tags=TAGS,
        operation_id="leads_retrieve",
        summary="One lead with its SLA",
        responses={200: LeadDetailSerializer, **ONE_ERRORS},
    )
    def get(self, request, pk: int):
        return Response(detail(self.get_scoped(leads(), pk), timezone.now()))


class LeadAction(ApiView):
    required_perms = {"POST": WRITE}

    def lead(self, pk: int) -> Lead:
        return self.get_scoped(leads(), pk)

    def answer(self, lead: Lead) -> Response:
        return Response(detail(leads().get(pk=lead.pk), timezone.now()))


class LeadActivities(LeadAction):
    @extend_schema(
        tags=TAGS,
        operation_id="leads_activities_create",
        summary="Record an activity (a call, an email, a disqualification...)",
        description=(
            "An outbound attempt by the owner (or a `disqualify`) on a NEW lead is progress: "
            "the lead moves on and its SLA timer completes. `occurred_at` may not lie in the "
            "future nor before the lead was created."
        ),
        request=ActivityCreate,
        examples=[
            example("The owner's call", {"kind": "call", "actor": "asha@demo.leadops"}),
            example("A disqualification", {"kind": "disqualify", "reason": "No budget"}),
        ],
        responses={201: ActivitySerializer, **ACTION_ERRORS},
    )
    def post(self, request, pk: int):
        lead = self.lead(pk)
        serializer = ActivityCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rep = data["actor"]
        # Done by the rep, recorded by the caller (the activity keeps both).
        actor = (
            Actor(rep=rep, user=request.user, name=rep.name)
            if rep is not None
            else resolve_actor(request.user)
        )
        activity = lifecycle.record_activity(
            lead,
            data["kind"],
            actor=actor,
            occurred_at=data.get("occurred_at"),
            notes=data["notes"],
            reason=data["reason"],
        )
        return Response(ActivitySerializer(activity).data, status=201)


class LeadTransition(LeadAction):
    @extend_schema(
        tags=TAGS,
        operation_id="leads_transition",
        summary="Move the lead to another state",
        description="Moves outside SPEC §3's table are refused with 409.",
        request=TransitionCreate,
        examples=[example("Contacted", {"to_state": "CONTACTED"})],
        responses={200: LeadDetailSerializer, **ACTION_ERRORS},
    )
    def post(self, request, pk: int):
        lead = self.lead(pk)
        serializer = TransitionCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lifecycle.transition(lead, data["to_state"], actor=request.user, reason=data["reason"])
        return self.answer(lead)


class LeadHold(LeadAction):
    @extend_schema(
        tags=TAGS,
        operation_id="leads_hold",
        summary="Put the lead on hold (its SLA clock pauses)",
        request=HoldCreate,
        examples=[
            example(
                "Waiting on the customer",
                {"reason": "Customer travelling", "resume_at": "2027-01-04T09:30:00+05:30"},
            )
        ],
        responses={200: LeadDetailSerializer, **ACTION_ERRORS},
    )
    def post(self, request, pk: int):
        lead = self.lead(pk)
        serializer = HoldCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        lifecycle.put_on_hold(
            lead, actor=request.user, reason=data["reason"], resume_at=data["resume_at"]
        )
        return self.answer(lead)


class LeadResume(LeadAction):
    @extend_schema(
        tags=TAGS,
        operation_id="leads_resume",
        summary="End the hold (the SLA clock restarts)",
        request=ResumeCreate,
        examples=[example("Back", {"reason": "Customer is back"})],
        responses={200: LeadDetailSerializer, **ACTION_ERRORS},
    )
    def post(self, request, pk: int):
        lead = self.lead(pk)
        serializer = ResumeCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        lifecycle.resume(lead, actor=request.user, reason=serializer.validated_data["reason"])
        return self.answer(lead)
