"""The one retry policy for Orange calls (tenacity), and what counts as transient.

Retried: timeouts, connection errors, 5xx and 429 (honouring ``Retry-After``). Never retried:
other 4xx. ``max_attempts`` counts every attempt, the first included. A deadline (the
command's TTL) stops retrying when the next attempt could not start in time.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bridge.config import RetryConfig
from bridge.errors import TransientApiError, TransientAuthError

# First back-off step; each further attempt doubles it, with full jitter, up to max_delay.
INITIAL_DELAY = 0.5


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientApiError | TransientAuthError)


def backoff(attempt: int, max_delay: float, retry_after: float | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    if retry_after is not None:
        return retry_after
    ceiling = min(max_delay, INITIAL_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


@dataclass(slots=True)
class _Stop:
    max_attempts: int
    deadline: float | None
    past_deadline: bool = False

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.max_attempts:
            return True
        if self.deadline is not None and time.monotonic() + state.upcoming_sleep > self.deadline:
            self.past_deadline = True
            return True
        return False


class RetryPolicy:
    """Builds a tenacity loop for one call; ``stopped_by_deadline`` tells why it gave up."""

    def __init__(self, config: RetryConfig, deadline: float | None) -> None:
        self._stop = _Stop(config.max_attempts, deadline)
        self._max_delay = config.max_delay

    @property
    def stopped_by_deadline(self) -> bool:
        return self._stop.past_deadline

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, TransientApiError) else None
        return backoff(state.attempt_number, self._max_delay, retry_after)

    def retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            retry=retry_if_exception(is_transient),
            stop=self._stop,
            wait=self._wait,
            reraise=True,
        )
