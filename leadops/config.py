"""Strict reading of settings from the environment.

django-environ parses the values; these helpers refuse anything malformed with a message that
names the variable, so a typo stops start-up instead of silently meaning "off".
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use true/false, 1/0, yes/no)")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ImproperlyConfigured(f"{name}={value!r} is not a finite number")
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} must be at least {minimum}")
    return number


def env_rate(name: str, default: str) -> str:
    """A request rate like `600/min` (per s, min, h or day)."""
    value = env_str(name, default) or default
    count, _, period = value.partition("/")
    if not count.isdigit() or int(count) < 1 or period not in ("s", "min", "h", "day"):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like 600/min (s, min, h, day)")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str = "", *, schemes: tuple[str, ...] = ("http", "https")) -> str:
    value = env_str(name, default)
    if not value:
        return ""
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not parsed.netloc:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a URL (expected {' or '.join(schemes)}://host...)"
        )
    return value


def env_database(name: str, default: str) -> dict:
    value = env_str(name, default) or default
    scheme = urlparse(value).scheme
    if scheme not in environ.Env.DB_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={value!r} has an unknown database scheme {scheme!r} "
            "(use sqlite:///path or postgres://user@host:port/name)"
        )
    try:
        config = environ.Env.db_url_config(value)
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not a database URL: {exc}") from None
    if "sqlite" not in config["ENGINE"] and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={value!r} names no database")
    return config


def env_email(name: str) -> dict:
    """EMAIL_URL (smtp://user:pass@host:port, consolemail://, ...) or empty for no email."""
    value = env_str(name)
    if not value:
        return {}
    try:
        return environ.Env.email_url_config(value)
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an email URL: {exc}") from None
