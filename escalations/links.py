"""Signed, expiring links to a small lead page (SPEC §9): no admin login, bound to one rep and
one lead. The token is `django.core.signing.TimestampSigner(salt=SALT).sign_object({"r": rep_id,
"l": lead_id})`: base64 JSON, a timestamp and an HMAC with SECRET_KEY, all URL-safe. A tampered
token is refused (403), an old one has expired (410, after SIGNED_LINK_MAX_AGE_HOURS).

Only the bound rep, while they own the lead, may act through the page; acting goes through
`leadops.lifecycle.record_activity` like any other channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from leadops import lifecycle
from leadops.models import ActivityKind, Lead

SALT = "escalations.links.lead-page"

# The page's actions: form value -> activity kind.
ACTIONS = {
    "call": ActivityKind.CALL,
    "email": ActivityKind.EMAIL,
    "disqualify": ActivityKind.DISQUALIFY,
}


class LinkInvalid(Exception):
    """The token was not signed by us (tampered, truncated, another salt)."""


class LinkExpired(LinkInvalid):
    """The token is genuine but older than SIGNED_LINK_MAX_AGE_HOURS."""


class LinkRefused(Exception):
    """The rep may not act on this lead (any more); the message says why."""


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def make_token(rep, lead) -> str:
    return _signer().sign_object({"r": rep.pk, "l": lead.pk})


def make_link(rep, lead) -> str:
    return f"{settings.SITE_URL}{reverse('lead_link', args=[make_token(rep, lead)])}"


def read_token(token: str) -> tuple[int, int]:
    """(rep id, lead id) of a genuine, unexpired token."""
    max_age = timedelta(hours=settings.SIGNED_LINK_MAX_AGE_HOURS)
    try:
        data = _signer().unsign_object(token, max_age=max_age)
    except signing.SignatureExpired as exc:  # checked after the signature: a forgery is a 403
        raise LinkExpired(str(exc)) from None
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise LinkInvalid(str(exc)) from None
    try:
        return int(data["r"]), int(data["l"])
    except (KeyError, TypeError, ValueError):
        raise LinkInvalid("malformed token") from None


@dataclass(frozen=True)
class Permission:
    allowed: bool
    reason: str = ""


def permission(rep, lead) -> Permission:
    """Whether `rep` may act on `lead` through the page, and if not, a sentence saying why."""
    if not rep.active:
        return Permission(False, f"{rep.name} is no longer active, so this link offers no actions.")
    if lead.owner_id != rep.pk:
        owner = lead.owner.name if lead.owner_id else "nobody"
        return Permission(
            False,
            f"This lead has moved to another owner: it is now owned by {owner}, "
            f"not {rep.name}. The link offers no actions any more.",
        )
    if lead.is_closed:
        return Permission(False, f"This lead is closed ({lead.get_state_display()}).")
    return Permission(True)


def act(rep, lead_id: int, action: str, *, reason: str = "", notes: str = ""):
    """Record `action` ("call", "email", "disqualify") on the lead as `rep`. The ownership check
    and the activity are one transaction on the locked lead row, so a reassignment racing the
    click cannot let a former owner act."""
    kind = ACTIONS.get(action)
    if kind is None:
        raise LinkRefused(f"Unknown action {action!r}.")
    reason = (reason or "").strip()
    if kind == ActivityKind.DISQUALIFY and not reason:
        raise lifecycle.InvalidLeadInput("a disqualification needs a reason", field="reason")
    with transaction.atomic():
        lead = Lead.objects.select_for_update().get(pk=lead_id)
        allowed = permission(rep, lead)
        if not allowed.allowed:
            raise LinkRefused(allowed.reason)
        return lifecycle.record_activity(lead, kind, actor=rep, reason=reason, notes=notes)
