"""What every API view shares: the permission per method, the body size limit (checked before
anything is read), the caller's team scope and one clock reading per request."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework.views import APIView

from escalations.api.errors import PayloadTooLarge
from escalations.api.permissions import MethodPermissions, scope
from teams import reference


class ApiView(APIView):
    permission_classes = [MethodPermissions]
    required_perms: dict[str, str] = {}
    # Callers, org and policies read from this process's memory while the database's reference
    # stamp is unchanged (`teams.reference`); off for a view that writes them (the org file).
    reference_snapshot = True

    def dispatch(self, request, *args, **kwargs):
        if not self.reference_snapshot:
            return super().dispatch(request, *args, **kwargs)
        with reference.snapshot():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit:
            raise PayloadTooLarge(f"The request body is over {limit} bytes ({length}).")
        super().initial(request, *args, **kwargs)

    @property
    def team_scope(self):
        return scope(self.request)

    def scoped(self, queryset, team_path: str = "team"):
        """`queryset` narrowed to the teams the caller may see (the admin's rule)."""
        return self.team_scope.filter(queryset, team_path)

    def get_scoped(self, queryset, pk: int, team_path: str = "team"):
        """One row of the caller's teams, or 404 (another team's row does not exist for them)."""
        return get_object_or_404(self.scoped(queryset, team_path), pk=pk)


def query(serializer_class, request) -> dict:
    """The validated query parameters (the last value of a repeated one)."""
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
