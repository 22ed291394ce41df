"""Device state published retained on ``B/D``: assumed from commands, corrected by status."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bridge.catalog import Catalog
from bridge.models import Command, Device, DeviceStatus, iso_now


@dataclass(frozen=True, slots=True)
class DeviceState:
    power: str | None = None  # on | standby | deep_sleep | unreachable | None (unknown)
    epg_id: str | None = None
    app_id: str | None = None
    last_command: str | None = None
    updated_at: str | None = None

    def after(self, command: Command) -> DeviceState:
        """The state a successful command leaves (assumed until a status call says more)."""
        match command.action:
            case "zap":
                return replace(self, power="on", epg_id=command.epg_id, app_id=None)
            case "launch":
                return replace(self, power="on", app_id=command.app_id)
            case "power":
                return replace(self, power=command.power)
            case "key" if command.key == "POWER" and self.power in ("on", "standby"):
                return replace(self, power="standby" if self.power == "on" else "on")
        return self

    def with_status(self, status: DeviceStatus) -> DeviceState:
        on = status.power == "on"
        return replace(self, power=status.power, epg_id=status.epg_id if on else None,
                       app_id=status.app_id if on else None, updated_at=iso_now())


def state_json(device: Device, state: DeviceState, catalog: Catalog) -> dict[str, Any]:
    channel = catalog.channel_by_epg(state.epg_id) if state.epg_id else None
    app = catalog.app_by_id(state.app_id) if state.app_id else None
    return {
        "device_id": device.device_id,
        "name": device.name,
        "model": device.model,
        "power": state.power,
        "channel": channel.name if channel else None,
        "epg_id": state.epg_id,
        "app": app.name if app else state.app_id,
        "last_command": state.last_command,
        "updated_at": state.updated_at,
    }
