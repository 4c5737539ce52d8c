from django.contrib import admin
from django.db import DatabaseError
from django.http import JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.defaults import page_not_found, server_error
from django.views.generic import RedirectView

from escalations import status as ops_status
from escalations.api import errors as api_errors


def healthz(request):
    """The admin index's status block as JSON (SPEC §10): 200 while the sweep keeps running,
    503 when its last run is older than three intervals or the database does not answer."""
    try:
        status = ops_status.collect(now=timezone.now())
    except DatabaseError as exc:
        return JsonResponse(
            {"status": "database unreachable", "error": type(exc).__name__}, status=503
        )
    return JsonResponse(status.as_dict(), status=200 if status.healthy else 503)


urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz),
    path("api/", include("escalations.api.urls")),
    path("", include("escalations.urls")),
]


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return api_errors.not_found(request, exception)
    return page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return api_errors.server_error(request)
    return server_error(request)
