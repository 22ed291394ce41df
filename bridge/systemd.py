"""sd_notify with the standard library: READY=1, STOPPING=1, STATUS=… and the watchdog.

Does nothing when not started by systemd (no ``NOTIFY_SOCKET``), so the daemon behaves the
same in a terminal, under Docker or under another supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping

_LOGGER = logging.getLogger(__name__)


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):  # abstract namespace
            address = "\0" + address[1:]
        self.address = address or None
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # ping at half the period systemd allows, as sd_watchdog_enabled(3) advises
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> None:
        if self.address is None:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            _LOGGER.warning("sd_notify to %r failed: %s", self.address, exc)

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")
        if self.watchdog_interval is not None and self._task is None:
            self._task = asyncio.create_task(self._watchdog(self.watchdog_interval),
                                             name="sd-watchdog")

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=stopping")
        if self._task is not None:
            self._task.cancel()

    async def _watchdog(self, interval: float) -> None:
        # The ping comes from the event loop itself: a blocked loop misses it and systemd
        # restarts the daemon, which is the point.
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                self.notify("WATCHDOG=1")
                await asyncio.sleep(interval)
