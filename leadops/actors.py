"""Who did something: a rep, a Django user, or the system (None)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist

from teams.models import Rep


@dataclass(frozen=True)
class Actor:
    rep: object | None  # teams.models.Rep
    user: object | None  # the Django user
    name: str

    @property
    def is_system(self) -> bool:
        return self.rep is None and self.user is None


SYSTEM = Actor(rep=None, user=None, name="system")


def rep_of_user(user):
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.rep
    except ObjectDoesNotExist:
        return None


def resolve_actor(actor) -> Actor:
    """Accept a Rep, a Django user, an Actor or None (the system)."""
    if actor is None:
        return SYSTEM
    if isinstance(actor, Actor):
        return actor
    if isinstance(actor, Rep):
        return Actor(rep=actor, user=actor.user if actor.user_id else None, name=actor.name)
    if isinstance(actor, get_user_model()):
        rep = rep_of_user(actor)
        name = (rep.name if rep else "") or actor.get_full_name() or actor.get_username()
        return Actor(rep=rep, user=actor, name=name)
    raise TypeError(f"actor must be a Rep, a user or None, not {type(actor).__name__}")
