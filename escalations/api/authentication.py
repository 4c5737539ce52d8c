"""Token authentication as DRF's, with the user's rep loaded in the same query (every write
names its actor, `leadops.actors.resolve_actor`), kept in memory while the reference stamp holds
(`teams.reference`: deleting a token or deactivating its user changes the stamp)."""

from __future__ import annotations

from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from teams import reference


def _token(key: str) -> Token | None:
    return Token.objects.select_related("user__rep").filter(key=key).first()


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key):
        token = reference.cached(("api-token", key), lambda: _token(key))
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
