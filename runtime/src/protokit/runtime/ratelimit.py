"""Token buckets per caller: the rate limiting stage of the chain, and its throttle on failed logins."""

from __future__ import annotations

import time

__all__ = ["RateLimiter", "peer_host"]


def peer_host(peer: str) -> str:
    """`ipv4:10.0.0.1:5123` -> `ipv4:10.0.0.1`: one bucket per client address, not per connection."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rpartition(":")[0]
    return peer


class RateLimiter:
    """Token buckets keyed by caller; `take` returns 0.0 when allowed, else seconds until a token is due."""

    MAX_KEYS = 10_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill time]

    def wait(self, key: str) -> float:
        """Seconds until `key` has a token (0.0: it has one now), taking nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket[0] + (time.monotonic() - bucket[1]) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, key: str) -> float:
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.MAX_KEYS:
                self._prune(now)
            self._buckets[key] = [self.burst - 1.0, now]
            return 0.0
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget callers whose bucket has refilled: they are indistinguishable from new ones."""
        full = [k for k, (tokens, last) in self._buckets.items() if tokens + (now - last) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.MAX_KEYS:  # all busy: start over rather than grow without bound
            self._buckets.clear()
