"""/api/: the versioned endpoints under v1/, the schema, the docs page, and a JSON 404 for any
other /api/ path."""

from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from escalations.api import errors
from escalations.api.views import leads, log, org


class IdConverter:
    """A database id: 1 to 18 digits (anything longer cannot be a bigint: a 404, not a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")

v1 = [
    path("leads/", leads.LeadList.as_view(), name="api-leads"),
    path("leads/<id:pk>/", leads.LeadDetail.as_view(), name="api-lead"),
    path("leads/<id:pk>/activities/", leads.LeadActivities.as_view(), name="api-lead-activities"),
    path("leads/<id:pk>/transition/", leads.LeadTransition.as_view(), name="api-lead-transition"),
    path("leads/<id:pk>/hold/", leads.LeadHold.as_view(), name="api-lead-hold"),
    path("leads/<id:pk>/resume/", leads.LeadResume.as_view(), name="api-lead-resume"),
    path("audit-events/", log.AuditEventList.as_view(), name="api-audit-events"),
    path("notifications/", log.NotificationList.as_view(), name="api-notifications"),
    path("reassignments/", log.ReassignmentList.as_view(), name="api-reassignments"),
    path("reassignments/<id:pk>/", log.ReassignmentDetail.as_view(), name="api-reassignment"),
    path(
        "reassignments/<id:pk>/revert/",
        log.ReassignmentRevert.as_view(),
        name="api-reassignment-revert",
    ),
    path("org/", org.OrgView.as_view(), name="api-org"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    re_path(r"^", errors.not_found),
]
