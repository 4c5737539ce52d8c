from django.contrib import admin
from django.http import HttpResponse
from django.urls import include, path
from django.views.defaults import page_not_found, server_error
from django.views.generic import RedirectView

from escalations.api import errors as api_errors


def healthz(request):
    return HttpResponse("ok", content_type="text/plain")


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
