"""Small frozen value objects shared by the parts of the bridge."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

POWER_STATES = {"ON": "on", "LIGHT_STANDBY": "standby", "DEEP_SLEEP": "deep_sleep",
                "UNREACHABLE": "unreachable"}


def iso_now() -> str:
    """UTC now as ``2026-12-04T19:00:00.123Z``."""
    return iso_time(time.time())


def iso_time(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Device:
    """A decoder as discovery lists it, with the friendly name the bridge gave it."""

    device_id: str
    name: str
    model: str
    last_seen: str | None
    friendly_name: str

    def to_json(self, available: bool = True) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "name": self.name,
            "friendly_name": self.friendly_name,
            "model": self.model,
            "last_seen": self.last_seen,
            "available": available,
        }


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """What the (optional) status call says about a decoder."""

    power: str | None  # on | standby | deep_sleep | unreachable
    epg_id: str | None
    app_id: str | None


@dataclass(frozen=True, slots=True)
class Command:
    """A validated command. One flat shape: only the fields of its ``action`` are set."""

    action: str  # zap | key | launch | power | macro | sequence | wait
    id: str | None = None
    ttl: float | None = None
    epg_id: str | None = None
    channel: str | None = None  # catalog name of epg_id, when known
    key: str | None = None
    mode: str = "SHORT"
    repeat: int = 1
    app_id: str | None = None
    app: str | None = None  # catalog name of app_id, when known
    power: str | None = None  # on | standby
    name: str | None = None  # macro name
    steps: tuple[Command, ...] = ()
    seconds: float = 0.0

    def describe(self) -> str:
        """A short human text for logs and ``last_command``."""
        match self.action:
            case "zap":
                return f"zap {self.channel or self.epg_id}"
            case "key":
                return f"key {self.key}" + (f" x{self.repeat}" if self.repeat > 1 else "")
            case "launch":
                return f"launch {self.app or self.app_id}"
            case "power":
                return f"power {self.power}"
            case "macro":
                return f"macro {self.name}"
            case "wait":
                return f"wait {self.seconds:g}s"
            case _:
                return f"sequence of {len(self.steps)}"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str
    retryable: bool

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one command, published on ``B/<segment>/result``."""

    id: str | None
    device: str
    device_id: str | None
    action: str | None
    ok: bool
    attempts: int = 0
    duration_ms: int = 0
    ts: str = field(default_factory=iso_now)
    error: ErrorInfo | None = None
    steps: int | None = None  # sequences: steps completed
    failed_step: int | None = None  # sequences: index of the failing step

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "device": self.device,
            "device_id": self.device_id,
            "action": self.action,
            "ok": self.ok,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "ts": self.ts,
        }
        if self.steps is not None:
            data["steps"] = self.steps
        if self.failed_step is not None:
            data["failed_step"] = self.failed_step
        if self.error is not None:
            data["error"] = self.error.to_json()
        return data
