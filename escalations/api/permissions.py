"""Who may call what. Every endpoint needs an authenticated user (token or session) holding the
permission its view names for the method (`required_perms`): reads need the model's view
permission, writes `leadops.feed_leads` (the Integrations group and ops managers), the org file
`escalations.load_org` (ops managers), a revert `escalations.change_reassignment` plus the
admin's own check (`escalations.permissions.check_can_revert`, in the verb). What a user sees is
narrowed by the one scope rule (`escalations.permissions.scope_of`), as in the admin."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from escalations import permissions


class MethodPermissions(BasePermission):
    message = "You do not have permission to do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active):
            return False
        method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
        if method not in view.required_perms:
            return True  # no such handler: the view answers 405
        perm = view.required_perms.get(method)
        return perm is not None and permissions.has_perm(user, perm)


def scope(request) -> permissions.Scope:
    """The request user's scope, computed once per request."""
    found = getattr(request, "_leadops_api_scope", None)
    if found is None:
        found = request._leadops_api_scope = permissions.scope_of(request.user)
    return found
