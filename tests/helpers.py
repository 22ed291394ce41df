"""Real parts for tests: a mosquitto broker on a free port, an MQTT probe, bridge configs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bridge.config import Config, parse_config
from bridge.localbroker import LocalBroker
from bridge.simulator import Simulator


class Broker(LocalBroker):
    """A private mosquitto for a test; it may stop and start it again on the same port."""


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    correlation: bytes | None = None

    def json(self) -> Any:
        return json.loads(self.payload)


class Probe:
    """A separate MQTT client, as a user's flow would be, with async waits on what arrives."""

    def __init__(self, port: int, *, protocol: int = 5) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._loop = asyncio.get_event_loop()
        self._changed = asyncio.Event()
        proto = paho.MQTTv5 if protocol == 5 else paho.MQTTv311
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=proto)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        correlation = getattr(props, "CorrelationData", None) if props else None
        with self._lock:
            self.messages.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain),
                                          correlation))
        self._loop.call_soon_threadsafe(self._changed.set)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5), "subscribe not acknowledged"

    def publish(self, topic: str, payload: str | bytes | dict[str, Any], *, retain: bool = False,
                response_topic: str | None = None, correlation: bytes | None = None) -> None:
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        props = None
        if response_topic is not None:
            props = Properties(PacketTypes.PUBLISH)
            props.ResponseTopic = response_topic
            if correlation is not None:
                props.CorrelationData = correlation
        self.client.publish(topic, data, qos=1, retain=retain, properties=props).wait_for_publish(5)

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    async def wait(self, topic: str, predicate: Callable[[Any], bool] = lambda _: True,
                   timeout: float = 10.0, *, raw: bool = False) -> Any:
        """The first message on ``topic`` whose (JSON) payload satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            self._changed.clear()
            for message in self.on(topic):
                try:
                    value = message.payload.decode(errors="replace") if raw else message.json()
                except ValueError:
                    value = message.payload.decode(errors="replace")
                if predicate(value):
                    return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m.payload[:200] for m in self.on(topic)]
                raise AssertionError(f"nothing matching on {topic} within {timeout} s; saw {seen}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def result(self, topic: str, command_id: str, timeout: float = 10.0) -> Any:
        return await self.wait(topic, lambda r: isinstance(r, dict) and r.get("id") == command_id,
                               timeout)

    def stop(self) -> None:
        self.client.disconnect()  # wakes paho's thread, so loop_stop does not wait a second
        self.client.loop_stop()


def write_token_file(sim: Simulator, path: Path, lifetime: int = 3600) -> None:
    sim.write_token_file(path, expires_in=lifetime)


def bridge_config(sim: Simulator, broker_port: int, folder: Path, **overrides: Any) -> Config:
    """A config for the bridge under test: fast retries, a unique client id and base topic."""
    base = overrides.pop("base_topic", f"t{uuid.uuid4().hex[:6]}")
    data: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "base_topic": base,
                 "client_id": f"bridge-{uuid.uuid4().hex[:8]}", "keepalive": 5},
        "orange": {"api_url": sim.url, "auth_url": sim.auth_url, "client_id": "demo",
                   "client_secret": "demo", "token_file": str(folder / "token.json"),
                   "timeout": 2, "retry": {"max_attempts": 4, "max_delay": 0.2},
                   "rate_limit": {"per_minute": 6000, "burst": 1000}},
        "devices": {"stb-0001": {"name": "salon"}},
        "homeassistant": {"enabled": False},
    }
    for key, value in overrides.items():
        section, _, name = key.partition("__")
        if name:
            data.setdefault(section, {})[name] = value
        else:
            data[section] = value
    return parse_config(data)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
