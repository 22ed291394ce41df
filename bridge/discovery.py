"""Friendly names for discovered decoders, and the periodic discovery loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from bridge.models import Device
from bridge.orange.api import ApiDevice
from bridge.topics import RESERVED, slug, unique_names

_LOGGER = logging.getLogger(__name__)

RETRY_AFTER_FAILURE = 30.0  # seconds before a failed discovery is tried again


def name_devices(found: list[ApiDevice], overrides: Mapping[str, str]) -> list[Device]:
    """Give each decoder its topic segment: the config name, else the slug of its API name.

    Config names win; a slug that collides with one, with another slug or with a reserved
    word gets a suffix (``decodeur_orange_2``, ``bridge_2``).
    """
    fixed = {overrides[d.device_id] for d in found if d.device_id in overrides}
    wanted = [slug(d.name) for d in found if d.device_id not in overrides]
    free = iter(unique_names([*sorted(fixed), *wanted])[len(fixed):])
    devices = []
    for entry in found:
        name = overrides.get(entry.device_id) or next(free)
        if name in RESERVED:  # only reachable for a config name; config validation refuses it
            name = f"{name}_2"
        devices.append(Device(entry.device_id, entry.name, entry.model, entry.last_seen, name))
    return devices


class DiscoveryLoop:
    """Runs ``discover`` at start, every ``interval`` seconds and when ``trigger`` is called."""

    def __init__(self, discover: Callable[[], Awaitable[bool]], interval: float) -> None:
        self._discover = discover
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="discovery")

    def trigger(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            ok = await self._discover()
            wait = self._interval if ok else min(self._interval, RETRY_AFTER_FAILURE)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
