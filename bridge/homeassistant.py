"""Home Assistant MQTT discovery (SPEC section 2, "Home Assistant").

Pure builders make each entity's config; :class:`HomeAssistant` publishes them, clears the
configs of decoders that left, clears stale ones at start, and republishes when Home Assistant
announces itself online (after a short random delay, so a restart of HA does not meet every
bridge of the house at the same millisecond).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bridge import __version__
from bridge.catalog import Catalog
from bridge.models import Device
from bridge.topics import Topics

_LOGGER = logging.getLogger(__name__)

ORIGIN = {"name": "orangetv2mqtt", "sw_version": __version__}
BIRTH_DELAY = (1.0, 5.0)  # seconds: random wait before answering HA's "online"
STALE_WINDOW = 3.0  # seconds after subscribing during which retained configs are collected
_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")

# key -> (name, plain action topic, payload_press, icon)
BUTTONS: dict[str, tuple[str, str, str, str]] = {
    "power_on": ("Power on", "power", "ON", "mdi:power"),
    "standby": ("Standby", "power", "OFF", "mdi:power-sleep"),
    "ch_up": ("Channel up", "key", "CH_UP", "mdi:chevron-up-box"),
    "ch_down": ("Channel down", "key", "CH_DOWN", "mdi:chevron-down-box"),
    "vol_up": ("Volume up", "key", "VOL_UP", "mdi:volume-plus"),
    "vol_down": ("Volume down", "key", "VOL_DOWN", "mdi:volume-minus"),
    "mute": ("Mute", "key", "MUTE", "mdi:volume-mute"),
    "ok": ("OK", "key", "OK", "mdi:checkbox-blank-circle-outline"),
    "back": ("Back", "key", "BACK", "mdi:arrow-left-bold"),
    "menu": ("Menu", "key", "MENU", "mdi:menu"),
    "up": ("Up", "key", "UP", "mdi:arrow-up-bold"),
    "down": ("Down", "key", "DOWN", "mdi:arrow-down-bold"),
    "left": ("Left", "key", "LEFT", "mdi:arrow-left-bold-outline"),
    "right": ("Right", "key", "RIGHT", "mdi:arrow-right-bold"),
    "play_pause": ("Play/pause", "key", "PLAY_PAUSE", "mdi:play-pause"),
}
POWER_OPTIONS = ["on", "standby", "deep_sleep", "unreachable"]


def sanitize(text: str) -> str:
    return _ID_BAD.sub("_", text)


@dataclass(frozen=True, slots=True)
class Entity:
    topic: str
    config: dict[str, Any]


class DiscoveryBuilder:
    """Builds the retained config messages for the bridge and each decoder."""

    def __init__(self, topics: Topics, prefix: str, catalog: Catalog) -> None:
        self.topics = topics
        self.prefix = prefix
        self.catalog = catalog
        self.bridge_id = f"orangetv2mqtt_bridge_{sanitize(topics.base)}"

    def _topic(self, component: str, object_id: str) -> str:
        return f"{self.prefix}/{component}/{sanitize(object_id)}/config"

    def bridge(self) -> list[Entity]:
        base = self.topics.base
        config = {
            "name": "Orange API",
            "unique_id": f"bridge_api_{base}",
            "state_topic": self.topics.bridge_info,
            "value_template": "{{ 'ON' if value_json.api == 'ok' else 'OFF' }}",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "availability_topic": self.topics.bridge_state,
            "device": {"identifiers": [self.bridge_id], "name": "Orange TV bridge",
                       "manufacturer": "orangetv2mqtt", "model": "Bridge",
                       "sw_version": __version__},
            "origin": ORIGIN,
        }
        return [Entity(self._topic("binary_sensor", f"{base}_bridge_api"), config)]

    def device(self, device: Device) -> list[Entity]:
        segment = device.friendly_name
        state = self.topics.state(segment)

        def common(key: str, name: str) -> dict[str, Any]:
            return {
                "name": name,
                "unique_id": f"{device.device_id}_{key}_{self.topics.base}",
                "availability": [{"topic": self.topics.bridge_state},
                                 {"topic": self.topics.availability(segment)}],
                "availability_mode": "all",
                "device": {"identifiers": [f"orangetv2mqtt_{device.device_id}"],
                           "name": device.name, "manufacturer": "Orange",
                           "model": device.model or "TV5", "via_device": self.bridge_id},
                "origin": ORIGIN,
            }

        def topic(component: str, key: str) -> str:
            return self._topic(component, f"{self.topics.base}_{device.device_id}_{key}")

        entities = [
            Entity(topic("button", key), {
                **common(key, name),
                "command_topic": f"{self.topics.base}/{segment}/{action}/set",
                "payload_press": payload,
                "icon": icon,
            })
            for key, (name, action, payload, icon) in BUTTONS.items()
        ]
        # selects: (key, name, plain action topic, options, icon); "None" = unknown in HA
        selects = (("channel", "Channel", "zap", [c.name for c in self.catalog.channels],
                    "mdi:television-classic"),
                   ("app", "App", "launch", [a.name for a in self.catalog.apps], "mdi:apps"))
        entities += [
            Entity(topic("select", key), {
                **common(key, name),
                "command_topic": f"{self.topics.base}/{segment}/{action}/set",
                "options": options,
                "state_topic": state,
                "value_template": f"{{{{ value_json.{key} or 'None' }}}}",
                "icon": icon,
            })
            for key, name, action, options, icon in selects
        ]
        entities += [
            Entity(topic("text", "channel_number"), {
                **common("channel_number", "Channel number"),
                "command_topic": f"{self.topics.base}/{segment}/zap/set",
                "mode": "text",
                "pattern": "^[0-9]{1,4}$",
                "min": 1,
                "max": 4,
                "icon": "mdi:numeric",
            }),
            Entity(topic("sensor", "power"), {
                **common("power", "Power"),
                "state_topic": state,
                "value_template": "{{ value_json.power or 'None' }}",
                "device_class": "enum",
                "options": POWER_OPTIONS,
                "icon": "mdi:power-settings",
            }),
            Entity(topic("sensor", "last_result"), {
                **common("last_result", "Last result"),
                "state_topic": self.topics.result(segment),
                "value_template": "{{ 'ok' if value_json.ok else value_json.error.code }}",
                "json_attributes_topic": self.topics.result(segment),
                "entity_category": "diagnostic",
                "icon": "mdi:message-reply-text",
            }),
        ]
        return entities

    def is_ours(self, topic: str) -> bool:
        """A config topic this bridge (this base topic) may have published."""
        parts = topic.split("/")
        return (len(parts) >= 3 and parts[-1] == "config"
                and parts[-2].startswith(sanitize(self.topics.base) + "_"))


Publish = Callable[[str, Any, bool], None]


class HomeAssistant:
    """The feature: publishes configs, clears them, answers HA's birth message."""

    def __init__(self, builder: DiscoveryBuilder, publish: Publish,
                 republish_all: Callable[[], None]) -> None:
        self.builder = builder
        self._publish = publish
        self._republish_all = republish_all
        self.status_topic = f"{builder.prefix}/status"
        self.config_filter = f"{builder.prefix}/+/+/config"
        self._published: dict[str, set[str]] = {}  # deviceId (or "") -> config topics
        self._found: set[str] = set()  # our retained configs found on the broker at start
        self.collecting = True
        self._task: asyncio.Task[None] | None = None

    def publish_all(self, devices: Iterable[Device]) -> None:
        self._send("", self.builder.bridge())
        for device in devices:
            self.publish_device(device)

    def publish_device(self, device: Device) -> None:
        self._send(device.device_id, self.builder.device(device))

    def _send(self, key: str, entities: list[Entity]) -> None:
        topics = set()
        for entity in entities:
            self._publish(entity.topic, entity.config, True)
            topics.add(entity.topic)
        for old in self._published.get(key, set()) - topics:  # e.g. a renamed decoder
            self._publish(old, b"", True)
        self._published[key] = topics

    def remove_device(self, device_id: str) -> None:
        for topic in self._published.pop(device_id, set()):
            self._publish(topic, b"", True)

    def clear_stale(self) -> list[str]:
        """Clear configs found at start that no current entity uses; stop collecting."""
        self.collecting = False
        current = set().union(*self._published.values()) if self._published else set()
        stale = sorted(self._found - current)
        for topic in stale:
            self._publish(topic, b"", True)
        if stale:
            _LOGGER.info("cleared %d stale Home Assistant configs", len(stale))
        self._found.clear()
        return stale

    def on_config(self, topic: str, payload: bytes) -> None:
        if self.collecting and payload and self.builder.is_ours(topic):
            try:
                unique_id = json.loads(payload).get("unique_id", "")
            except (ValueError, AttributeError):
                return
            if isinstance(unique_id, str) and unique_id.endswith(f"_{self.builder.topics.base}"):
                self._found.add(topic)

    def on_status(self, payload: bytes) -> None:
        idle = self._task is None or self._task.done()
        if payload.strip().lower() == b"online" and idle:
            self._task = asyncio.create_task(self._after_birth(), name="ha-birth")

    async def _after_birth(self) -> None:
        await asyncio.sleep(random.uniform(*BIRTH_DELAY))  # noqa: S311 - jitter, not crypto
        _LOGGER.info("Home Assistant is online: republishing discovery and states")
        self._republish_all()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
