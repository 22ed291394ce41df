"""A client-side token bucket in front of every Orange API call.

Orange disables the API for an account that floods it; this bucket makes that impossible
whatever a flow or a bug publishes. An empty bucket makes callers wait, never fail, unless
the wait would carry a command past its TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bridge.errors import ExpiredError


class TokenBucket:
    """``burst`` calls at once, then ``per_minute`` calls a minute, in arrival order."""

    def __init__(
        self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock()

    def _refill(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def reserve(self, deadline: float | None = None) -> float:
        """Take a token (possibly one not yet earned); return how long to wait for it.

        A negative balance is a queue of reservations, so waiting callers keep their order
        without a lock.
        """
        now = self._refill()
        wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
        if deadline is not None and now + wait > deadline:
            raise ExpiredError(
                f"the client-side rate limit would delay this call {wait:.1f} s, past its TTL"
            )
        self._tokens -= 1
        return wait

    async def acquire(self, deadline: float | None = None) -> None:
        wait = self.reserve(deadline)
        if wait > 0:
            await asyncio.sleep(wait)
