"""One shape for every error body under /api/ (SPEC §12):

    {"error": {"code": "invalid", "message": "...", "fields": {"name": ["..."]}}}

`code` is one of `CODES` (stable, for programs), `message` is for people, `fields` names the bad
inputs (present on 400 only). DRF's own errors (400/401/403/404/405/406/413/415/429), the domain's
refusals and Django's 404/500 under /api/ all come out in it."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from escalations.orgfile import OrgFileError
from escalations.permissions import NotAllowed
from escalations.reassign import ReassignError
from leadops.lifecycle import IllegalTransition, InvalidLeadInput

logger = logging.getLogger("leadops.api")

# status -> (default code, what it means; the schema's descriptions)
CODES = {
    400: ("invalid", "Invalid input: `fields` names each bad field with its messages."),
    401: ("not_authenticated", "No or wrong credentials (`Authorization: Token <key>`)."),
    403: ("permission_denied", "Authenticated, but not allowed to do this."),
    404: ("not_found", "No such resource (or not one of your teams')."),
    405: ("method_not_allowed", "The method is not allowed on this resource."),
    406: ("not_acceptable", "The API answers with application/json only."),
    409: ("conflict", "Refused by the lead lifecycle or the reassignment rules."),
    413: ("too_large", "The request body is over the size limit."),
    415: ("unsupported_media_type", "Send the body as application/json (UTF-8)."),
    429: ("throttled", "Too many requests for this token; wait `Retry-After` seconds."),
    500: ("server_error", "Unexpected error; nothing was changed."),
}


class ErrorDetail(serializers.Serializer):
    code = serializers.CharField(help_text="Stable error code, e.g. `invalid`, `conflict`.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="On 400: each bad field (dotted for nested ones) with its messages.",
    )


class ErrorBody(serializers.Serializer):
    error = ErrorDetail()


def responses(*statuses: int) -> dict:
    """The schema's error responses of an operation."""
    return {s: OpenApiResponse(ErrorBody, description=CODES[s][1]) for s in statuses}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Refused."
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def body(code: str, message: str, fields: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    return {"error": error}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field" or "parent.child" or "items.0.x": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for i, item in enumerate(detail):
                for k, v in _flatten(item, f"{prefix}.{i}" if prefix else str(i)).items():
                    out.setdefault(k, []).extend(v)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return {k: v for k, v in out.items() if v}


def _invalid(fields: dict[str, list[str]]) -> Response:
    names = ", ".join(sorted(fields))
    return Response(body("invalid", f"Invalid input: {names}.", fields), status=400)


def exception_handler(exc, context) -> Response:
    """DRF's exception handler for every API view: one shape, and no 500 in HTML."""
    if isinstance(exc, InvalidLeadInput):
        return _invalid({exc.field or "non_field_errors": [str(exc)]})
    if isinstance(exc, IllegalTransition | ReassignError):
        return Response(body("conflict", str(exc)), status=409)
    if isinstance(exc, NotAllowed):
        return Response(body("permission_denied", str(exc)), status=403)
    if isinstance(exc, OrgFileError):
        return _invalid({"document": list(exc.errors)})
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if isinstance(exc, exceptions.ValidationError):
        return _invalid(_flatten(exc.detail))
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        code = CODES.get(exc.status_code, ("error", ""))[0]
        if isinstance(exc, exceptions.AuthenticationFailed):
            code = "authentication_failed"
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return Response(body(code, str(message)), status=exc.status_code, headers=headers)
    request = context.get("request")
    logger.exception(
        "API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?")
    )
    return Response(body(*CODES[500]), status=500)


# --- Django's own 404 and 500 under /api/ ------------------------------------------------------


@csrf_exempt  # any method on a path that does not exist: 404, also for a POST
def not_found(request, exception=None) -> JsonResponse:
    """Any /api/ URL that no route matches (and Django's 404 handler for /api/ paths)."""
    return JsonResponse(body("not_found", f"No API resource at {request.path}."), status=404)


def server_error(request) -> JsonResponse:
    return JsonResponse(body(*CODES[500]), status=500)
