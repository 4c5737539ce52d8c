"""What happened, read-only: the audit log, the notification outbox and the reassignments (with
the revert, authorised as in the admin)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from audit.models import AuditEvent
from escalations.api.errors import responses
from escalations.api.pagination import EventPagination, KeysetPagination
from escalations.api.serializers import (
    AuditEventSerializer,
    AuditQuery,
    NotificationQuery,
    NotificationSerializer,
    ReassignmentQuery,
    ReassignmentSerializer,
    RevertCreate,
)
from escalations.api.views.base import ApiView, query
from escalations.models import Notification, Reassignment
from escalations.reassign import revert_reassignment

LIST_ERRORS = responses(400, 401, 403, 406, 429)


def paginated(view, queryset, serializer_class) -> Response:
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, view.request, view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


class AuditEventList(ApiView):
    required_perms = {"GET": "audit.view_auditevent"}
    pagination_class = EventPagination

    @extend_schema(
        tags=["audit"],
        operation_id="audit_events_list",
        summary="The audit log (newest first)",
        description=(
            "Filter by lead, kind and period (`since` ≤ occurred_at < `until`). Pages follow "
            "(occurred_at, id), so events written while you page never shift a page."
        ),
        parameters=[AuditQuery],
        responses={200: AuditEventSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        filters = query(AuditQuery, request)
        events = self.scoped(AuditEvent.objects.all())
        if "lead" in filters:
            events = events.filter(lead_id=filters["lead"])
        if "kind" in filters:
            events = events.filter(kind=filters["kind"])
        if "since" in filters:
            events = events.filter(occurred_at__gte=filters["since"])
        if "until" in filters:
            events = events.filter(occurred_at__lt=filters["until"])
        return paginated(self, events, AuditEventSerializer)


class NotificationList(ApiView):
    required_perms = {"GET": "escalations.view_notification"}
    pagination_class = KeysetPagination

    @extend_schema(
        tags=["notifications"],
        operation_id="notifications_list",
        summary="The notification outbox (newest first)",
        parameters=[NotificationQuery],
        responses={200: NotificationSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        filters = query(NotificationQuery, request)
        rows = self.scoped(Notification.objects.select_related("recipient", "team"))
        if "lead" in filters:
            rows = rows.filter(lead_id=filters["lead"])
        for name in ("status", "kind"):
            if name in filters:
                rows = rows.filter(**{name: filters[name]})
        return paginated(self, rows, NotificationSerializer)


def reassignments():
    return Reassignment.objects.select_related("lead", "from_rep", "to_rep")


class ReassignmentList(ApiView):
    required_perms = {"GET": "escalations.view_reassignment"}
    pagination_class = KeysetPagination

    @extend_schema(
        tags=["reassignments"],
        operation_id="reassignments_list",
        summary="Reassignments (newest first)",
        parameters=[ReassignmentQuery],
        responses={200: ReassignmentSerializer(many=True), **LIST_ERRORS},
    )
    def get(self, request):
        filters = query(ReassignmentQuery, request)
        rows = self.scoped(reassignments(), "lead__team")
        if "lead" in filters:
            rows = rows.filter(lead_id=filters["lead"])
        if "cause" in filters:
            rows = rows.filter(cause=filters["cause"])
        if "reverted" in filters:
            rows = rows.filter(reverted_at__isnull=not filters["reverted"])
        return paginated(self, rows, ReassignmentSerializer)


class ReassignmentDetail(ApiView):
    required_perms = {"GET": "escalations.view_reassignment"}

    @extend_schema(
        tags=["reassignments"],
        operation_id="reassignments_retrieve",
        summary="One reassignment with the candidates considered",
        responses={200: ReassignmentSerializer, **responses(401, 403, 404, 406, 429)},
    )
    def get(self, request, pk: int):
        reassignment = self.get_scoped(reassignments(), pk, "lead__team")
        return Response(ReassignmentSerializer(reassignment).data)


class ReassignmentRevert(ApiView):
    required_perms = {"POST": "escalations.change_reassignment"}

    @extend_schema(
        tags=["reassignments"],
        operation_id="reassignments_revert",
        summary="Revert a reassignment (the original owner gets the lead back)",
        description=(
            "Allowed to the team lead or manager of the lead's team and to ops managers, as in "
            "the admin. Refused with 409 when already reverted or the lead has moved on."
        ),
        request=RevertCreate,
        examples=[
            OpenApiExample(
                "A misfire", value={"reason": "Asha knows this customer"}, request_only=True
            )
        ],
        responses={
            200: ReassignmentSerializer,
            **responses(400, 401, 403, 404, 406, 409, 413, 415, 429),
        },
    )
    def post(self, request, pk: int):
        reassignment = self.get_scoped(reassignments(), pk, "lead__team")
        serializer = RevertCreate(data=request.data)
        serializer.is_valid(raise_exception=True)
        reverted = revert_reassignment(
            reassignment, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return Response(ReassignmentSerializer(reassignments().get(pk=reverted.pk)).data)
