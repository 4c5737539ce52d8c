"""Sending at each destination's pace (SPEC §8): a token bucket per destination (a Slack channel
or DM, a Teams webhook), `NOTIFY_RATE_PER_SECOND` tokens a second up to `NOTIFY_RATE_BURST`,
as Slack allows about one message a second per channel with short bursts. A 429's Retry-After
empties the destination's bucket until then. Kept per process (each delivery worker paces its
own sends; the provider's 429s, honoured through Retry-After, are the shared signal)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from time import monotonic


@dataclass
class _Bucket:
    tokens: float
    updated: float
    blocked_until: float = 0.0


class DestinationLimiter:
    def __init__(self, rate: float, burst: float, clock=monotonic):
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._buckets: dict[object, _Bucket] = {}
        self._lock = threading.Lock()

    def _bucket(self, key, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def take(self, key, *, max_wait: float) -> tuple[bool, float]:
        """Reserve a send to `key`: (True, seconds to wait first), or (False, seconds until one
        could start) when that is more than `max_wait` (nothing is reserved then)."""
        if self.rate <= 0:
            return True, 0.0
        with self._lock:
            now = self._clock()
            bucket = self._bucket(key, now)
            wait = max(bucket.blocked_until - now, 0.0)
            if bucket.tokens < 1:
                wait = max(wait, (1 - bucket.tokens) / self.rate)
            if wait > max_wait:
                return False, wait
            bucket.tokens -= 1
            return True, wait

    def block(self, key, seconds: float) -> None:
        """The provider said "not before `seconds` from now" (a 429's Retry-After)."""
        if self.rate <= 0:
            return
        with self._lock:
            now = self._clock()
            bucket = self._bucket(key, now)
            bucket.blocked_until = max(bucket.blocked_until, now + seconds)
            bucket.tokens = min(bucket.tokens, 0.0)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
