"""Per-client rate limits: a fixed one-minute window counted in the ``KeyValueStore``.

With Redis the count is shared by every instance; in-process it is per instance
(docs/architecture.md section 2: same behaviour, not the same scale). A fixed window lets a client
burst up to twice its limit across a window boundary; that is accepted for its simplicity (one
atomic INCR per request).
The answer to an exhausted limit is 429 with ``Retry-After`` = seconds until the window ends.
"""

from __future__ import annotations

import math

from gateway.auth.errors import TooManyRequests
from gateway.kv import KeyValueStore

WINDOW_SECONDS = 60


class RateLimiter:
    def __init__(self, kv: KeyValueStore, per_minute: int, *, namespace: str) -> None:
        self.kv = kv
        self.per_minute = per_minute
        self.namespace = namespace

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    async def hit(self, client_id: str) -> None:
        """Count one request for ``client_id``; raise ``TooManyRequests`` beyond the limit."""
        if not self.enabled:
            return
        window = await self.kv.incr_window(f"rl:{self.namespace}:{client_id}", WINDOW_SECONDS)
        if window.count > self.per_minute:
            raise TooManyRequests(max(1, math.ceil(window.reset_after)))
