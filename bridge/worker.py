"""DeviceWorker: one ordered queue and one consumer task per decoder.

Commands for one decoder run one at a time in arrival order; decoders run concurrently, so a
slow or sleeping decoder delays no other. A QoS 1 redelivery (same ``id`` within 60 s) is not
executed again: the first result is published again instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bridge.errors import BridgeError
from bridge.executor import Outcome, error_info
from bridge.models import Command, Device, ErrorInfo, Result

_LOGGER = logging.getLogger(__name__)

DEDUP_WINDOW = 60.0  # seconds an id is remembered per decoder
# ...and at most this many ids per decoder, so a flood cannot grow memory without bound.
# A QoS 1 redelivery concerns the broker's in-flight window (20 messages by default).
DEDUP_MAX_IDS = 256


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """Where a result goes: ``B/<segment>/result`` and the MQTT 5 response topic, if any."""

    segment: str
    response_topic: str | None = None
    correlation_data: bytes | None = None


@dataclass(slots=True)
class Pending:
    command: Command
    reply: ReplyTo
    arrived: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class _Seen:
    at: float
    result: Result | None = None
    waiting: list[ReplyTo] = field(default_factory=list)


Runner = Callable[[Device, Pending], Awaitable[Outcome]]
Publisher = Callable[[Result, ReplyTo], None]
Done = Callable[[Device, Pending, Outcome], None]


class DeviceWorker:
    def __init__(self, device: Device, *, queue_size: int, run: Runner,
                 publish: Publisher, done: Done) -> None:
        self.device = device
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=queue_size)
        self._run = run
        self._publish = publish
        self._done = done
        self._seen: dict[str, _Seen] = {}
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._consume(), name=f"worker-{self.device.device_id}")

    @property
    def idle(self) -> bool:
        return self._idle.is_set() and self._queue.empty()

    def submit(self, pending: Pending) -> None:
        """Queue a command, or answer at once (duplicate id, full queue)."""
        command_id = pending.command.id
        if command_id is not None:
            now = time.monotonic()
            self._forget_before(now - DEDUP_WINDOW)
            seen = self._seen.get(command_id)
            if seen is not None:
                _LOGGER.info("%s: id %r seen %.1f s ago: not executed again",
                             pending.reply.segment, command_id, now - seen.at)
                if seen.result is not None:
                    self._publish(seen.result, pending.reply)
                else:
                    seen.waiting.append(pending.reply)
                return
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            _LOGGER.warning("%s: queue full (%d waiting): command refused",
                            pending.reply.segment, self._queue.maxsize)
            self._publish(self.refusal(pending, ErrorInfo(
                "queue_full", f"{self._queue.maxsize} commands are already waiting for "
                "this decoder", True)), pending.reply)
            return
        if command_id is not None:
            self._seen[command_id] = _Seen(time.monotonic())

    def refusal(self, pending: Pending, error: ErrorInfo) -> Result:
        return Result(id=pending.command.id, device=pending.reply.segment,
                      device_id=self.device.device_id, action=pending.command.action,
                      ok=False, error=error)

    def _forget_before(self, limit: float) -> None:
        # ids are kept in arrival order: drop from the oldest, stop at the first one to keep
        while self._seen:
            key, seen = next(iter(self._seen.items()))
            recent = seen.at >= limit and len(self._seen) < DEDUP_MAX_IDS
            if recent or seen.result is None:
                return
            del self._seen[key]

    async def _consume(self) -> None:
        while True:
            pending = await self._queue.get()
            self._idle.clear()
            try:
                outcome = await self._run(self.device, pending)
                self._finish(pending, outcome)
            except Exception:  # the boundary: a bug costs one command, never the worker
                _LOGGER.exception("%s: command failed unexpectedly", self.device.friendly_name)
            finally:
                self._idle.set()

    def _finish(self, pending: Pending, outcome: Outcome) -> None:
        self._publish(outcome.result, pending.reply)
        command_id = pending.command.id
        seen = self._seen.get(command_id) if command_id is not None else None
        if seen is not None:
            seen.result = outcome.result
            for reply in seen.waiting:
                self._publish(outcome.result, reply)
            seen.waiting.clear()
        self._done(self.device, pending, outcome)

    async def stop(self, grace: float, reason: BridgeError) -> None:
        """Let the command in progress finish (up to ``grace`` s); answer the queued ones."""
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            self._publish(self.refusal(pending, error_info(reason)), pending.reply)
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
