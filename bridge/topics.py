"""Build and parse the bridge's MQTT topics (pure). SPEC section 2."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

RESERVED = frozenset({"bridge", "all"})
_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")


def slug(name: str) -> str:
    """A topic-safe friendly name: ``"Décodeur Orange 2"`` -> ``"decodeur_orange_2"``."""
    folded = unicodedata.normalize("NFKD", name.strip().lower())
    ascii_text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    text = _SLUG_BAD.sub("_", ascii_text).strip("_")
    return text or "decoder"


def is_valid_filter(topic: str) -> bool:
    """A subscribable MQTT topic filter (wildcards in whole levels only, no NUL)."""
    if not topic or "\0" in topic or len(topic.encode()) > 65535:
        return False
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def is_publishable(topic: str) -> bool:
    """A topic we may publish to: no wildcards, NUL or empty levels."""
    return (
        bool(topic)
        and not any(c in topic for c in "+#\0")
        and "" not in topic.split("/")
    )


def unique_names(wanted: list[str]) -> list[str]:
    """Make names unique and non-reserved, keeping order: a second ``salon`` becomes ``salon_2``."""
    taken: set[str] = set()
    result = []
    for name in wanted:
        candidate, counter = name, 1
        while candidate in taken or candidate in RESERVED:
            counter += 1
            candidate = f"{name}_{counter}"
        taken.add(candidate)
        result.append(candidate)
    return result


@dataclass(frozen=True, slots=True)
class Inbound:
    """What an inbound topic asks for."""

    kind: str  # command | get | request | other
    segment: str = ""  # device segment (friendly name, deviceId or "all")
    action: str | None = None  # plain action topic; None for B/D/set
    request: str = ""  # bridge request name


class Topics:
    """Every topic of the bridge under one base topic."""

    def __init__(self, base: str) -> None:
        self.base = base.strip("/")
        self._prefix = self.base + "/"
        self.bridge_state = f"{self.base}/bridge/state"
        self.bridge_info = f"{self.base}/bridge/info"
        self.bridge_devices = f"{self.base}/bridge/devices"
        self.subscriptions = (
            f"{self.base}/+/set",
            f"{self.base}/+/+/set",
            f"{self.base}/+/get",
            f"{self.base}/bridge/request/+",
        )

    def state(self, segment: str) -> str:
        return f"{self.base}/{segment}"

    def availability(self, segment: str) -> str:
        return f"{self.base}/{segment}/availability"

    def result(self, segment: str) -> str:
        return f"{self.base}/{segment}/result"

    def response(self, request: str) -> str:
        return f"{self.base}/bridge/response/{request}"

    def parse(self, topic: str) -> Inbound:
        if not topic.startswith(self._prefix):
            return Inbound("other")
        levels = topic[len(self._prefix):].split("/")
        if not all(levels) or any(c in topic for c in "+#\0"):
            return Inbound("other")  # nothing we could answer on a valid topic
        match levels:
            case ["bridge", "request", name]:
                return Inbound("request", request=name)
            case [segment, "set"] if segment != "bridge":
                return Inbound("command", segment)
            case [segment, action, "set"] if segment != "bridge":
                return Inbound("command", segment, action=action)
            case [segment, "get"] if segment != "bridge":
                return Inbound("get", segment)
        return Inbound("other")
