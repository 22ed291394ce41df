"""DeviceWorker alone: order, duplicates, the memory cap on remembered ids, queue_full."""

from __future__ import annotations

import asyncio

from bridge.errors import BridgeError
from bridge.executor import Outcome
from bridge.models import Command, Device, Result
from bridge.worker import DEDUP_MAX_IDS, DeviceWorker, Pending, ReplyTo

DEVICE = Device("stb-0001", "Decodeur", "TV5", None, "salon")


def make(queue_size: int = 1000) -> tuple[DeviceWorker, list[str], list[Result]]:
    ran: list[str] = []
    published: list[Result] = []

    async def run(device: Device, pending: Pending) -> Outcome:
        ran.append(pending.command.id or "")
        await asyncio.sleep(0)
        return Outcome(Result(pending.command.id, "salon", device.device_id, "zap", True), ())

    worker = DeviceWorker(DEVICE, queue_size=queue_size, run=run,
                          publish=lambda result, reply: published.append(result),
                          done=lambda *_: None)
    return worker, ran, published


def zap(command_id: str) -> Pending:
    return Pending(Command("zap", id=command_id, epg_id="192"), ReplyTo("salon"))


async def test_order_and_duplicates() -> None:
    worker, ran, published = make()
    worker.start()
    for command_id in ("a", "b", "a", "c"):
        worker.submit(zap(command_id))
    await asyncio.sleep(0.05)
    worker.submit(zap("b"))  # a late redelivery gets the first result again
    await worker.stop(1, BridgeError("stopping"))
    assert ran == ["a", "b", "c"]
    assert sorted(r.id or "" for r in published) == ["a", "a", "b", "b", "c"]


async def test_remembered_ids_are_capped() -> None:
    worker, ran, _ = make()
    worker.start()
    for n in range(DEDUP_MAX_IDS * 3):
        worker.submit(zap(f"id{n}"))
        if n % 50 == 0:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    worker.submit(zap("last"))
    assert len(worker._seen) <= DEDUP_MAX_IDS + 1
    worker.submit(zap(f"id{DEDUP_MAX_IDS * 3 - 1}"))  # recent: still known, not run again
    await asyncio.sleep(0.05)
    await worker.stop(1, BridgeError("stopping"))
    assert ran.count(f"id{DEDUP_MAX_IDS * 3 - 1}") == 1


async def test_queue_full_counts_waiting_commands_only() -> None:
    worker, _, published = make(queue_size=2)
    for command_id in ("a", "b", "c"):  # not started: all three wait
        worker.submit(zap(command_id))
    assert [r.error.code for r in published if r.error] == ["queue_full"]
