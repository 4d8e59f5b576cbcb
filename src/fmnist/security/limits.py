"""Token-bucket rate limits per identity and scope (in one server process)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """``per_minute`` requests per identity, with bursts of up to ``burst`` (the bucket)."""

    def __init__(self, per_minute: dict[str, int], burst_seconds: float = 10.0) -> None:
        """Limits per scope; a bucket holds ``burst_seconds`` worth of requests (at least 1)."""
        self.rates = {scope: n / 60.0 for scope, n in per_minute.items()}
        self.capacity = {scope: max(1.0, r * burst_seconds) for scope, r in self.rates.items()}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, scope: str, identity: str, now: float | None = None) -> float:
        """0 when the request may go on, else the seconds until a token is free."""
        rate = self.rates.get(scope)
        if rate is None:
            return 0.0
        now = time.monotonic() if now is None else now
        capacity = self.capacity[scope]
        with self._lock:
            bucket = self._buckets.setdefault((scope, identity), _Bucket(capacity, now))
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate
