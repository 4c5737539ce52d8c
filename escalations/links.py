"""Signed, expiring links to a small lead page (SPEC §9): no admin login, bound to one rep and
one lead. The token is `django.core.signing.TimestampSigner(salt=SALT).sign_object({"r": rep_id,
"l": lead_id})`: base64 JSON, a timestamp and an HMAC with SECRET_KEY, all URL-safe. A tampered
token is refused (403), an old one has expired (410, after SIGNED_LINK_MAX_AGE_HOURS).

Each form on the page carries a one-time nonce, signed and bound to the link's rep and lead; an
action is recorded once per nonce (`escalations.actions.act_by_link`), so a replayed POST records
nothing new. Who may act is `escalations.actions.permission`, the rule Slack uses too."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "escalations.links.lead-page"
FORM_SALT = "escalations.links.form-nonce"


class LinkInvalid(Exception):
    """The token was not signed by us (tampered, truncated, another salt)."""


class LinkExpired(LinkInvalid):
    """The token is genuine but older than SIGNED_LINK_MAX_AGE_HOURS."""


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


# --- the forms' one-time nonces -------------------------------------------------------------------


def _form_signer() -> signing.Signer:
    return signing.Signer(salt=FORM_SALT)


def make_form_nonce(rep, lead) -> str:
    """A one-time value for one form on the page, bound to the link's rep and lead. Nothing is
    stored when it is made, so a GET (or a link scanner) changes nothing."""
    return _form_signer().sign(f"{rep.pk}.{lead.pk}.{secrets.token_urlsafe(12)}")


def read_form_nonce(value: str, rep, lead) -> str:
    """The one-time part of a genuine nonce made for this rep and lead; else LinkInvalid."""
    try:
        rep_id, lead_id, nonce = _form_signer().unsign(value or "").split(".", 2)
    except (signing.BadSignature, ValueError):
        raise LinkInvalid("the form's nonce is missing or was changed") from None
    if (rep_id, lead_id) != (str(rep.pk), str(lead.pk)) or not nonce:
        raise LinkInvalid("the form's nonce belongs to another link")
    return nonce
