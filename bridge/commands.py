"""MQTT payload -> validated :class:`Command` (pure: no I/O, no state).

Every refusal is a :class:`CommandError` whose ``code`` is one of SPEC section 2's codes and
whose message names the bad field, so that a flow author sees what to fix.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from bridge.catalog import KEY_MODES, Catalog, normalize
from bridge.errors import CommandError
from bridge.models import Command

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_ID_CHARS = 64
MAX_WAIT_SECONDS = 60.0
MAX_TTL_SECONDS = 86_400.0
MAX_REPEAT = 20
MAX_STEPS = 50

PLAIN_ACTIONS: dict[str, str] = {  # plain topic action -> the JSON field its payload fills
    "zap": "channel",
    "key": "key",
    "launch": "app",
    "power": "state",
    "macro": "name",
}
_FIELDS: dict[str, frozenset[str]] = {
    "zap": frozenset({"channel", "epg_id"}),
    "key": frozenset({"key", "mode", "repeat"}),
    "launch": frozenset({"app", "app_id"}),
    "power": frozenset({"state"}),
    "macro": frozenset({"name"}),
    "sequence": frozenset({"steps"}),
    "wait": frozenset({"seconds"}),
}
_COMMON = frozenset({"action", "id", "ttl"})
_POWER = {"on": "on", "off": "standby", "standby": "standby"}
_STEP_ACTIONS = ("zap", "key", "launch", "power", "wait")
EXAMPLE = '{"action":"zap","channel":"TF1"}'


class CommandParser:
    """Parses command payloads against a catalog and the configured macros."""

    def __init__(self, catalog: Catalog, macros: Mapping[str, Command] | None = None) -> None:
        self.catalog = catalog
        self.macros = {normalize(name): macro for name, macro in (macros or {}).items()}

    def parse(self, payload: bytes, action: str | None = None) -> Command:
        """Parse a payload from ``B/D/set`` (``action`` None) or ``B/D/<action>/set``."""
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise CommandError(
                f"payload is {len(payload)} bytes, the limit is {MAX_PAYLOAD_BYTES}",
                code="payload_too_large",
            )
        if action is None:
            return self.from_dict(_json_object(payload))
        if action not in PLAIN_ACTIONS:
            raise CommandError(
                f"unknown action topic '{action}': use one of {', '.join(PLAIN_ACTIONS)}"
            )
        data = _plain_payload(payload, action)
        if data.setdefault("action", action) != action:
            raise CommandError(f"action: '{data['action']}' does not match the topic '{action}'")
        return self.from_dict(data)

    def from_dict(self, data: Mapping[str, Any], *, in_sequence: bool = False) -> Command:
        """Validate a command object (also used for macro steps and triggers in the config)."""
        action = data.get("action")
        allowed = _STEP_ACTIONS if in_sequence else (*PLAIN_ACTIONS, "sequence")
        if not isinstance(action, str) or action.lower() not in allowed:
            shown = f"'{action}'" if isinstance(action, str) else "nothing"
            raise CommandError(f"action: expected one of {', '.join(allowed)}, got {shown}")
        action = action.lower()
        unknown = sorted(set(data) - _COMMON - _FIELDS[action])
        if unknown:
            raise CommandError(
                f"{unknown[0]}: unknown field for action '{action}' "
                f"(allowed: {', '.join(sorted(_FIELDS[action] | _COMMON))})"
            )
        common: dict[str, Any] = {"id": _command_id(data), "ttl": _ttl(data)}
        builder = getattr(self, f"_{action}")
        command: Command = builder(data, common)
        return command

    # one builder per action -------------------------------------------------------------

    def _zap(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        if ("channel" in data) == ("epg_id" in data):
            raise CommandError("channel: give exactly one of 'channel' or 'epg_id'")
        if "epg_id" in data:
            epg_id = _text(data, "epg_id", allow_int=True)
            known = self.catalog.channel_by_epg(epg_id)
            return Command("zap", epg_id=epg_id, channel=known.name if known else None, **common)
        wanted = _text(data, "channel", allow_int=True)
        channel = self.catalog.channel(wanted)
        if channel is None:
            hint = _hint(self.catalog.suggest_channels(wanted))
            raise CommandError(
                f"channel: unknown channel '{wanted}'{hint}",
                code="unknown_channel",
            )
        return Command("zap", epg_id=channel.epg_id, channel=channel.name, **common)

    def _key(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        wanted = _text(data, "key", allow_int=True)
        key = self.catalog.key(wanted)
        if key is None:
            raise CommandError(
                f"key: unknown key '{wanted}'{_hint(self.catalog.suggest_keys(wanted))}",
                code="unknown_key",
            )
        mode_name = _text(data, "mode").lower() if "mode" in data else "short"
        if mode_name not in KEY_MODES:
            raise CommandError(
                f"mode: expected one of {', '.join(KEY_MODES)}, got '{mode_name}'"
            )
        repeat = data.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise CommandError(f"repeat: expected an integer 1-{MAX_REPEAT}, got {repeat!r}")
        return Command("key", key=key, mode=KEY_MODES[mode_name], repeat=repeat, **common)

    def _launch(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        if ("app" in data) == ("app_id" in data):
            raise CommandError("app: give exactly one of 'app' or 'app_id'")
        if "app_id" in data:
            app_id = _text(data, "app_id")
            known = self.catalog.app_by_id(app_id)
            return Command("launch", app_id=app_id, app=known.name if known else None, **common)
        wanted = _text(data, "app")
        app = self.catalog.app(wanted)
        if app is None:
            raise CommandError(
                f"app: unknown app '{wanted}'{_hint(self.catalog.suggest_apps(wanted))}",
                code="unknown_app",
            )
        return Command("launch", app_id=app.app_id, app=app.name, **common)

    def _power(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        state = _text(data, "state").lower()
        if state not in _POWER:
            raise CommandError(f"state: expected on, off or standby, got '{state}'")
        return Command("power", power=_POWER[state], **common)

    def _macro(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        wanted = _text(data, "name")
        macro = self.macros.get(normalize(wanted))
        if macro is None:
            known = ", ".join(m.name or "" for m in self.macros.values()) or "none configured"
            raise CommandError(
                f"name: unknown macro '{wanted}' (known: {known})", code="unknown_macro"
            )
        return Command("macro", name=macro.name, steps=macro.steps, **common)

    def _sequence(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        return Command("sequence", steps=self.steps(data.get("steps"), "steps"), **common)

    def _wait(self, data: Mapping[str, Any], common: dict[str, Any]) -> Command:
        seconds = data.get("seconds")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not 0 <= seconds <= MAX_WAIT_SECONDS
            or math.isnan(seconds)
        ):
            raise CommandError(
                f"seconds: expected a number 0-{MAX_WAIT_SECONDS:g}, got {seconds!r}"
            )
        return Command("wait", seconds=float(seconds), **common)

    def steps(self, raw: Any, where: str) -> tuple[Command, ...]:
        """Validate a list of steps (an inline sequence or a macro from the config)."""
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
            raise CommandError(f"{where}: expected a list of 1-{MAX_STEPS} commands")
        steps = []
        for index, step in enumerate(raw):
            if not isinstance(step, dict):
                raise CommandError(f"{where}[{index}]: expected a command object, got {step!r}")
            try:
                steps.append(self.from_dict(step, in_sequence=True))
            except CommandError as exc:
                raise CommandError(f"{where}[{index}].{exc.message}", code=exc.code) from exc
        return tuple(steps)


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError("payload is not valid UTF-8", code="invalid_json") from exc
    except ValueError as exc:
        raise CommandError(f"payload is not valid JSON ({exc}); example: {EXAMPLE}",
                           code="invalid_json") from exc
    if not isinstance(data, dict):
        raise CommandError(f"payload must be a JSON object, for example {EXAMPLE}")
    return data


def _plain_payload(payload: bytes, action: str) -> dict[str, Any]:
    """A plain topic takes a bare value (``TF1``), a JSON scalar (``"TF1"``, ``1``) or an object."""
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise CommandError("payload is not valid UTF-8") from exc
    if text.startswith("{"):
        return _json_object(payload)
    value: Any = text
    if text.startswith('"') or text.lstrip("-").isdigit():
        try:
            value = json.loads(text)
        except ValueError:
            value = text
    if value == "":
        raise CommandError(f"{PLAIN_ACTIONS[action]}: the payload is empty")
    return {PLAIN_ACTIONS[action]: value}


def _text(data: Mapping[str, Any], name: str, *, allow_int: bool = False) -> str:
    value = data.get(name)
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        kind = "a string or number" if allow_int else "a string"
        raise CommandError(f"{name}: expected {kind}, got {value!r}")
    return value.strip()


def _command_id(data: Mapping[str, Any]) -> str | None:
    if "id" not in data or data["id"] is None:
        return None
    value = data["id"]
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS:
        raise CommandError(f"id: expected a string of at most {MAX_ID_CHARS} characters, "
                           f"got {_short(value)}")
    return value


def _ttl(data: Mapping[str, Any]) -> float | None:
    if "ttl" not in data or data["ttl"] is None:
        return None
    value = data["ttl"]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0 < value <= MAX_TTL_SECONDS
    ):
        raise CommandError(f"ttl: expected a number of seconds above 0, got {_short(value)}")
    return float(value)


def _hint(names: list[str]) -> str:
    return f"; did you mean {' or '.join(names)}?" if names else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
