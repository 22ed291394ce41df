"""The daemon's two token timers: refresh ahead of expiry, and pick up a new token file.

Timers only (no polling loop at a fixed rate while all is well): the refresh timer sleeps
until the refresh is due; the file watcher looks every few seconds only while login is
required, so a `login` run while the daemon is up is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bridge.errors import AuthError, TransientAuthError
from bridge.orange.auth import TokenManager

_LOGGER = logging.getLogger(__name__)

TOKEN_FILE_RECHECK = 10.0  # seconds between looks at the token file while login is required
REFRESH_RETRY = (30.0, 300.0)  # back-off after a failed background refresh: first, longest


class TokenTimers:
    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._keep_fresh(), name="token-refresh"),
                       asyncio.create_task(self._watch_file(), name="token-file")]

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _keep_fresh(self) -> None:
        """Refresh ahead of expiry even when no command comes."""
        failures = 0
        while True:
            due = self.tokens.refresh_due_in()
            if failures:
                wait = min(REFRESH_RETRY[0] * 2 ** (failures - 1), REFRESH_RETRY[1])
            else:
                wait = TOKEN_FILE_RECHECK if due is None else due
            await asyncio.sleep(max(wait, 0.05))
            if self.tokens.refresh_due_in() != 0.0:
                continue
            try:
                await self.tokens.refresh()
            except AuthError as exc:  # login required: the token manager reports it
                failures = failures + 1 if isinstance(exc, TransientAuthError) else 0
                if failures:
                    _LOGGER.warning("token refresh failed (%s); tokens kept, next try later",
                                    exc.message)
            else:
                failures = 0

    async def _watch_file(self) -> None:
        while True:
            await asyncio.sleep(TOKEN_FILE_RECHECK)
            if self.tokens.state == "login_required" and self.tokens.token_file_changed():
                with contextlib.suppress(AuthError):
                    self.tokens.load()
                    _LOGGER.info("new token file found: login no longer required")
