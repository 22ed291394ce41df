"""The household the simulator serves: decoders, their power rules and the API routes.

Pure logic (no sockets): ``Household.handle`` takes a request and returns a ``SimResponse``,
enforcing SPEC section 1 strictly so that a bridge bug shows up as a clear 4xx.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from bridge.catalog import APP_TABLE, KEY_MODES, KEY_NAMES

KNOWN_APPS = frozenset(app_id for _, app_id, _ in APP_TABLE)
KNOWN_KEYS = frozenset(KEY_NAMES)
KEY_MODE_VALUES = frozenset(KEY_MODES.values())
POWER_VALUES = ("ON", "LIGHT_STANDBY", "DEEP_SLEEP", "UNREACHABLE")
_DEVICE_ROUTE = re.compile(
    r"^/devices/([^/]+)/(status|power-on|standby|zap|keys|applications/launch)$")


@dataclass(slots=True)
class SimResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    executed: bool = False  # the call changed (or would have changed) the decoder

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


def gateway_error(status: int, code: int, message: str, description: str) -> SimResponse:
    return SimResponse(status, {"code": code, "message": message, "description": description})


@dataclass(slots=True)
class Decoder:
    device_id: str
    name: str
    power: str = "ON"
    epg_id: str | None = "192"
    app_id: str | None = None
    model: str = "TV5"
    last_seen: str = "2026-12-01T18:00:00Z"

    def to_api(self) -> dict[str, Any]:
        return {"deviceId": self.device_id, "name": self.name, "model": self.model,
                "lastSeen": self.last_seen}

    def status(self) -> dict[str, Any]:
        on = self.power == "ON"
        return {"deviceId": self.device_id, "powerState": self.power,
                "epgId": self.epg_id if on else None, "applicationId": self.app_id if on else None}


def demo_decoders(count: int = 2) -> list[Decoder]:
    """The default household: "Decodeur Orange" (ON, on TF1), "Decodeur Orange 2" (standby)."""
    decoders = [Decoder("stb-0001", "Decodeur Orange", "ON", "192")]
    if count >= 2:
        decoders.append(Decoder("stb-0002", "Decodeur Orange 2", "LIGHT_STANDBY", None))
    decoders.extend(
        Decoder(f"stb-{n:04d}", f"Decodeur Orange {n}", "ON", "192") for n in range(3, count + 1)
    )
    return decoders


class Household:
    """Decoders by deviceId, and the routes of the decoder API."""

    def __init__(self, decoders: list[Decoder], *, status_offered: bool = True) -> None:
        self.decoders = {d.device_id: d for d in decoders}
        self.status_offered = status_offered

    def handle(self, method: str, path: str, body: bytes) -> SimResponse:
        if path == "/devices":
            if method != "GET":
                return _method_not_allowed()
            return SimResponse(200, {"devices": [d.to_api() for d in self.decoders.values()]})
        match = _DEVICE_ROUTE.match(path)
        if match is None:
            return gateway_error(404, 0, "Resource not found",
                                 f"No resource at {path}: check the base URL")
        device_id, action = match.groups()
        decoder = self.decoders.get(device_id)
        if action == "status":
            if method != "GET":
                return _method_not_allowed()
            if not self.status_offered:
                return gateway_error(404, 0, "Resource not found", "No status resource")
            if decoder is None:
                return _unknown_device(device_id)
            return SimResponse(200, decoder.status())
        if method != "POST":
            return _method_not_allowed()
        if decoder is None:
            return _unknown_device(device_id)
        payload, problem = _parse_body(body, action)
        if problem is not None:
            return problem
        return self._command(decoder, action, payload)

    def _command(self, decoder: Decoder, action: str, payload: dict[str, Any]) -> SimResponse:
        if decoder.power in ("DEEP_SLEEP", "UNREACHABLE"):
            return gateway_error(409, 62, "Device unreachable",
                                 "The decoder is in deep sleep or switched off")
        if decoder.power == "LIGHT_STANDBY" and action not in ("power-on", "standby"):
            return gateway_error(409, 61, "Device in standby",
                                 "The decoder is in light standby: only power-on is accepted")
        match action:
            case "power-on":
                decoder.power = "ON"
                decoder.epg_id = decoder.epg_id or "192"
            case "standby":
                decoder.power = "LIGHT_STANDBY"
            case "zap":
                decoder.epg_id, decoder.app_id = payload["epgId"], None
            case "applications/launch":
                decoder.app_id = payload["applicationId"]
            case "keys" if payload["key"] == "POWER" and payload["mode"] in ("SHORT", "RELEASE"):
                decoder.power = "LIGHT_STANDBY"
        return SimResponse(204, executed=True)


def _parse_body(body: bytes, action: str) -> tuple[dict[str, Any], SimResponse | None]:
    if action in ("power-on", "standby"):
        if body.strip() not in (b"", b"{}", b"null"):
            return {}, _bad_request(f"{action} takes no body")
        return {}, None
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        return {}, _bad_request("The body is not JSON")
    if not isinstance(payload, dict):
        return {}, _bad_request("The body must be a JSON object")
    expected = {"zap": {"epgId"}, "keys": {"key", "mode"},
                "applications/launch": {"applicationId"}}[action]
    if set(payload) != expected:
        return {}, _bad_request(f"Expected exactly the fields {sorted(expected)}")
    if action == "zap":
        epg = payload["epgId"]
        if not isinstance(epg, str) or not epg.isdigit() or len(epg) > 10:
            return {}, _bad_request("Unknown epgId (a string of digits)")
    elif action == "keys":
        if payload["key"] not in KNOWN_KEYS:
            return {}, _bad_request(f"Unknown key {payload['key']!r}")
        if payload["mode"] not in KEY_MODE_VALUES:
            return {}, _bad_request(f"Unknown mode {payload['mode']!r}")
    elif payload["applicationId"] not in KNOWN_APPS:
        return {}, _bad_request(f"Unknown applicationId {payload['applicationId']!r}")
    return payload, None


def _bad_request(description: str) -> SimResponse:
    return gateway_error(400, 20, "Bad request", description)


def _unknown_device(device_id: str) -> SimResponse:
    return gateway_error(404, 60, "Device not found", f"No decoder {device_id} in this household")


def _method_not_allowed() -> SimResponse:
    return gateway_error(405, 61, "Method not allowed", "This method is not allowed here")
