"""Request rate limits (moving window, per process) for log-in attempts and API tokens.

Per process on purpose: a province runs one or a few app servers; each enforces its own
window, which bounds the total at (servers × limit). The insider-leak guard, which must
hold across servers, counts in the database instead.
"""

from __future__ import annotations

import time

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class RateLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._item = limits.RateLimitItemPerMinute(max(per_minute, 1))
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def hit(self, *key: str) -> bool:
        """Count one request; False when the key is over its limit."""
        return not self.enabled or self._limiter.hit(self._item, *key)

    def retry_after(self, *key: str) -> int:
        stats = self._limiter.get_window_stats(self._item, *key)
        return max(1, int(stats.reset_time - time.time()) + 1)
