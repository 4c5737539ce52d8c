"""Token authentication as DRF's, with the user's rep loaded in the same query: every write
names its actor (`leadops.actors.resolve_actor`), which would otherwise cost one more query."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        try:
            token = Token.objects.select_related("user__rep").get(key=key)
        except Token.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
