"""Rate limits per token (SPEC §12: 429 when throttled). Each token has a budget of reads and
one of writes per window (a session counts as its user), set by `API_THROTTLE_READ_RATE` /
`API_THROTTLE_WRITE_RATE` (e.g. `1200/min`); a new token starts with a full budget.

A fixed-window counter in the default cache: one atomic `incr` per request, so several web
processes share one count when the cache is shared (Redis, with `REDIS_URL`); without Redis the
cache is the process's memory, right for the embedded single-process setup (see settings). A
window may let up to twice the rate through across its boundary; that is the price of one
cache operation per request instead of a list of timestamps."""

from __future__ import annotations

import functools
import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

PERIODS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
PERIODS.update({"d": 86400, "day": 86400})
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@functools.lru_cache(maxsize=64)
def parse_rate(rate: str) -> tuple[int, int]:
    """`600/min` -> (600, 60). Raises ValueError on anything else."""
    count, _, period = rate.partition("/")
    number = int(count)
    if number < 1 or period not in PERIODS:
        raise ValueError(f"{rate!r} is not a rate like 600/min ({', '.join(PERIODS)})")
    return number, PERIODS[period]


@functools.lru_cache(maxsize=1024)
def _token_ident(token: str) -> str:
    return "t" + hashlib.sha256(token.encode()).hexdigest()[:24]


class TokenRateThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return True  # refused by authentication anyway
        scope = "read" if request.method in SAFE_METHODS else "write"
        rate = settings.API_THROTTLE_RATES[scope]
        allowed, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"api-throttle:{scope}:{self.ident(request)}:{period}:{window}"
        self.wait_seconds = (window + 1) * period - now
        if cache.add(key, 1, timeout=period + 1):
            return True
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=period + 1)
            return True
        return count <= allowed

    @staticmethod
    def ident(request) -> str:
        token = getattr(request.auth, "key", None)
        if token:  # the token itself, hashed (the cache is no place for a secret)
            return _token_ident(token)
        return f"u{request.user.pk}"

    def wait(self) -> float:
        return getattr(self, "wait_seconds", None)
