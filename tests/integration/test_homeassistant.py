"""Home Assistant discovery on a real broker: publish, birth message, removal, stale clean-up."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import bridge.app
import bridge.homeassistant
from tests.conftest import BridgeRunner
from tests.helpers import Probe

PER_DECODER = 20  # 15 buttons, 2 selects, 1 text, 2 sensors


def configs(probe: Probe, prefix: str) -> dict[str, bytes]:
    """The last payload seen on each config topic under ``prefix``."""
    latest: dict[str, bytes] = {}
    for message in list(probe.messages):
        if message.topic.startswith(prefix + "/") and message.topic.endswith("/config"):
            latest[message.topic] = message.payload
    return latest


async def until(predicate: object, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)


async def test_discovery_lifecycle(runner: BridgeRunner, probe: Probe,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge.homeassistant, "BIRTH_DELAY", (0.05, 0.1))
    monkeypatch.setattr(bridge.app, "STALE_WINDOW", 0.5)
    prefix = f"ha{uuid.uuid4().hex[:6]}"
    config = runner.config(homeassistant={"enabled": True, "prefix": prefix})
    b = config.mqtt.base_topic
    stale = f"{prefix}/button/{b}_stb-9999_ok/config"
    foreign = f"{prefix}/button/zigbee_lamp/config"
    probe.publish(stale, {"name": "OK", "unique_id": f"stb-9999_ok_{b}",
                          "command_topic": "x"}, retain=True)
    probe.publish(foreign, {"name": "Lamp", "unique_id": "lamp", "command_topic": "y"},
                  retain=True)
    probe.subscribe(f"{prefix}/#")
    probe.subscribe(f"{b}/#")

    await runner.start(config)
    await until(lambda: len([p for p in configs(probe, prefix).values() if p])
                >= 1 + 2 * PER_DECODER + 1)
    found = configs(probe, prefix)
    ours = {t: json.loads(p) for t, p in found.items() if p and t not in (stale, foreign)}
    assert len(ours) == 1 + 2 * PER_DECODER
    salon_ok = ours[f"{prefix}/button/{b}_stb-0001_ok/config"]
    assert salon_ok["command_topic"] == f"{b}/salon/key/set" and salon_ok["payload_press"] == "OK"

    await until(lambda: configs(probe, prefix).get(stale) == b"")  # stale one cleared
    assert configs(probe, prefix)[foreign] != b""  # another integration's config untouched

    before = len(probe.messages)
    probe.publish(f"{prefix}/status", "online")
    await until(lambda: sum(1 for m in probe.messages[before:]
                            if m.topic.startswith(prefix + "/button/")) >= 2 * 15)
    # discovery first, then the states it points at
    after = probe.messages[before:]
    first_state = next(i for i, m in enumerate(after) if m.topic == f"{b}/salon")
    last_config = max(i for i, m in enumerate(after) if m.topic.endswith("/config"))
    assert last_config < first_state

    runner.simulator.state.apply({"remove_devices": ["stb-0002"]})
    probe.publish(f"{b}/bridge/request/discover", "")
    await until(lambda: all(
        p == b"" for t, p in configs(probe, prefix).items() if "_stb-0002_" in t))
    assert all(p != b"" for t, p in configs(probe, prefix).items() if "_stb-0001_" in t)
    probe.publish(foreign, b"", retain=True)
