"""Configuration: YAML -> frozen dataclasses (SPEC section 3).

Every problem is collected and reported at once, one line each, as
``dotted.path: what is wrong, got <value>``. Strings may use ``${VAR}`` or ``${VAR:-default}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge.catalog import Catalog
from bridge.commands import CommandParser
from bridge.config_reader import MASK, SECRET_KEYS, Section, shown
from bridge.errors import CommandError, ConfigError
from bridge.models import Command
from bridge.orange import paths
from bridge.topics import is_valid_filter, slug

_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    enabled: bool = False
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = "orangetv2mqtt"
    base_topic: str = "orangetv"
    protocol: int = 5
    keepalive: int = 60
    tls: TlsConfig = field(default_factory=TlsConfig)


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int = 4
    max_delay: float = 20.0  # seconds, the longest back-off between two attempts


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    per_minute: float = 60.0
    burst: int = 10


@dataclass(frozen=True, slots=True)
class OrangeConfig:
    api_url: str
    auth_url: str
    client_id: str
    client_secret: str
    redirect_uri: str = "http://localhost:8765/callback"
    token_file: Path = Path("orangetv2mqtt-token.json")
    timeout: float = 10.0  # seconds per HTTP call
    retry: RetryConfig = field(default_factory=RetryConfig)
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    interval: float = 3600.0  # seconds between two discoveries


@dataclass(frozen=True, slots=True)
class CommandsConfig:
    ttl: float = 30.0  # seconds a command may wait before its first attempt
    queue_size: int = 20


@dataclass(frozen=True, slots=True)
class Trigger:
    topic: str
    device: str
    command: Command
    match: Mapping[str, Any] | None = None
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class HomeAssistantConfig:
    enabled: bool = True
    prefix: str = "homeassistant"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class Config:
    mqtt: MqttConfig
    orange: OrangeConfig
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    commands: CommandsConfig = field(default_factory=CommandsConfig)
    devices: Mapping[str, str] = field(default_factory=dict)  # deviceId -> friendly name
    channels: Mapping[str, str] = field(default_factory=dict)
    apps: Mapping[str, str] = field(default_factory=dict)
    macros: Mapping[str, Command] = field(default_factory=dict)
    triggers: tuple[Trigger, ...] = ()
    homeassistant: HomeAssistantConfig = field(default_factory=HomeAssistantConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def catalog(self) -> Catalog:
        return Catalog(self.channels, self.apps)

    def parser(self) -> CommandParser:
        return CommandParser(self.catalog(), self.macros)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raise :class:`ConfigError` listing every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read the config file ({exc.strerror or exc})"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{file}: the config file is not UTF-8 text"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"{file}: not valid YAML{line}: {problem}"]) from exc
    return parse_config(data, base_dir=file.resolve().parent)


def parse_config(data: Any, base_dir: Path | None = None) -> Config:
    """Validate an already-parsed YAML document; relative paths resolve against ``base_dir``."""
    problems: list[str] = []
    root = Section(data, "", problems)
    if problems:  # not even a mapping: nothing else can be read
        raise ConfigError(problems)
    mqtt = _mqtt(root.section("mqtt"))
    orange = _orange(root.section("orange"), base_dir or Path.cwd())

    discovery_s = root.section("discovery")
    discovery = DiscoveryConfig(discovery_s.number("interval", 3600, 10, 7 * 86400))
    discovery_s.done()
    commands_s = root.section("commands")
    commands = CommandsConfig(
        ttl=commands_s.number("ttl", 30, 0.1, 86400),
        queue_size=commands_s.integer("queue_size", 20, 1, 10_000),
    )
    commands_s.done()

    devices = _devices(root, problems)
    channels = _names(root, "channels", problems, digits=True)
    apps = _names(root, "apps", problems, digits=False)
    parser = CommandParser(Catalog(channels, apps))
    macros = _macros(root, parser, problems)
    parser = CommandParser(parser.catalog, macros)
    triggers = _triggers(root, parser, problems)

    ha_s = root.section("homeassistant")
    homeassistant = HomeAssistantConfig(
        enabled=ha_s.boolean("enabled", True), prefix=ha_s.text("prefix", "homeassistant")
    )
    if "+" in homeassistant.prefix or "#" in homeassistant.prefix:
        ha_s.fail("prefix", f"must not contain + or #, got {homeassistant.prefix!r}")
    ha_s.done()
    log_s = root.section("logging")
    logging_cfg = LoggingConfig(
        level=log_s.choice("level", "info", _LEVELS),
        format=log_s.choice("format", "text", ("text", "json")),
    )
    log_s.done()
    root.done()
    if problems:
        raise ConfigError(problems)
    return Config(
        mqtt=mqtt, orange=orange, discovery=discovery, commands=commands, devices=devices,
        channels=channels, apps=apps, macros=macros, triggers=triggers,
        homeassistant=homeassistant, logging=logging_cfg,
    )


def _mqtt(s: Section) -> MqttConfig:
    tls_s = s.section("tls")
    tls = TlsConfig(
        enabled=tls_s.boolean("enabled", False),
        ca_certs=tls_s.optional_text("ca_certs"),
        certfile=tls_s.optional_text("certfile"),
        keyfile=tls_s.optional_text("keyfile"),
        insecure=tls_s.boolean("insecure", False),
    )
    tls_s.done()
    base_topic = s.text("base_topic", "orangetv")
    if not is_valid_filter(base_topic) or any(c in base_topic for c in "+#"):
        s.fail("base_topic", f"must be a topic without + or # or empty levels, got {base_topic!r}")
    config = MqttConfig(
        host=s.text("host", "127.0.0.1"),
        port=s.integer("port", 8883 if tls.enabled else 1883, 1, 65535),
        username=s.optional_text("username"),
        password=s.optional_text("password"),
        client_id=s.text("client_id", "orangetv2mqtt"),
        base_topic=base_topic.strip("/"),
        protocol=s.choice("protocol", 5, (5, 3)),
        keepalive=s.integer("keepalive", 60, 5, 3600),
        tls=tls,
    )
    s.done()
    return config


def _orange(s: Section, base_dir: Path) -> OrangeConfig:
    retry_s = s.section("retry")
    retry = RetryConfig(
        max_attempts=retry_s.integer("max_attempts", 4, 1, 10),
        max_delay=retry_s.number("max_delay", 20, 0, 600),
    )
    retry_s.done()
    rate_s = s.section("rate_limit")
    rate = RateLimitConfig(
        per_minute=rate_s.number("per_minute", 60, 1, 1_000_000),
        burst=rate_s.integer("burst", 10, 1, 100_000),
    )
    rate_s.done()
    token_file = Path(s.text("token_file", "./orangetv2mqtt-token.json")).expanduser()
    config = OrangeConfig(
        api_url=s.url("api_url", None),
        auth_url=s.url("auth_url", paths.ORANGE_AUTH_URL),
        client_id=s.text("client_id", "${ORANGE_CLIENT_ID}"),
        client_secret=s.text("client_secret", "${ORANGE_CLIENT_SECRET}"),
        redirect_uri=s.url("redirect_uri", "http://localhost:8765/callback"),
        token_file=token_file if token_file.is_absolute() else base_dir / token_file,
        timeout=s.number("timeout", 10, 0.1, 300),
        retry=retry,
        rate_limit=rate,
    )
    s.done()
    return config


def _devices(root: Section, problems: list[str]) -> dict[str, str]:
    devices: dict[str, str] = {}
    for device_id, entry in root.mapping("devices").items():
        path = f"devices.{device_id}"
        entry_s = Section(entry, path, problems)
        name = entry_s.text("name", None, required=True)
        entry_s.done()
        if name and slug(name) != name:
            entry_s.fail("name", f"use lowercase letters, digits, _ or - (like {slug(name)!r}), "
                                 f"got {name!r}")
        elif name in ("bridge", "all"):
            entry_s.fail("name", f"'{name}' is reserved, got {name!r}")
        elif name in devices.values():
            entry_s.fail("name", f"already used by another device, got {name!r}")
        devices[str(device_id)] = name
    return devices


def _names(root: Section, key: str, problems: list[str], *, digits: bool) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, raw in root.mapping(key).items():
        value = str(raw) if isinstance(raw, int) and not isinstance(raw, bool) else raw
        ok = isinstance(value, str) and value.strip() and (value.isdigit() or not digits)
        if not ok:
            what = "an epgId (digits)" if digits else "an applicationId string"
            problems.append(f"{key}.{name}: expected {what}, got {shown(key, value)}")
            continue
        result[str(name)] = value.strip()
    return result


def _macros(root: Section, parser: CommandParser, problems: list[str]) -> dict[str, Command]:
    macros: dict[str, Command] = {}
    for name, steps in root.mapping("macros").items():
        try:
            macros[str(name)] = Command("macro", name=str(name),
                                        steps=parser.steps(steps, f"macros.{name}"))
        except CommandError as exc:
            problems.append(exc.message if exc.message.startswith("macros.")
                            else f"macros.{name}: {exc.message}")
    return macros


def _triggers(root: Section, parser: CommandParser, problems: list[str]) -> tuple[Trigger, ...]:
    raw = root.raw("triggers", None) or []
    if not isinstance(raw, list):
        root.fail("triggers", f"expected a list, got {shown('triggers', raw)}")
        return ()
    triggers = []
    for index, entry in enumerate(raw):
        s = Section(entry, f"triggers[{index}]", problems)
        topic = s.text("topic", None, required=True)
        if topic and not is_valid_filter(topic):
            s.fail("topic", f"not a valid MQTT topic filter, got {topic!r}")
        device = s.text("device", None, required=True)
        match = s.raw("match", None)
        if match is not None and not isinstance(match, dict):
            s.fail("match", f"expected a mapping of JSON fields, got {shown('match', match)}")
            match = None
        payload = s.optional_text("payload")
        if match is not None and payload is not None:
            s.fail("payload", "give either match or payload, not both")
        raw_command = s.raw("command", None)
        command = Command("wait")
        if not isinstance(raw_command, dict):
            s.fail("command", f"expected a command mapping, got {shown('command', raw_command)}")
        else:
            try:
                command = parser.from_dict(raw_command)
            except CommandError as exc:
                s.fail("command", exc.message)
        s.done()
        triggers.append(Trigger(topic, device, command, match, payload))
    return tuple(triggers)


def masked(config: Config) -> dict[str, Any]:
    """The resolved config as plain data, secrets replaced by ``***``: safe to print or log."""
    data: dict[str, Any] = _plain(config)
    return data


def _plain(value: Any, key: str = "") -> Any:
    if key in SECRET_KEYS and value is not None:
        return MASK
    if isinstance(value, Command):
        return _command_plain(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), f.name) for f in fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _command_plain(command: Command) -> Any:
    if command.action == "macro":
        return [_command_plain(step) for step in command.steps]
    defaults = Command(command.action)
    return {
        f.name: _command_plain_value(getattr(command, f.name))
        for f in fields(command)
        if f.name == "action" or getattr(command, f.name) != getattr(defaults, f.name)
    }


def _command_plain_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_command_plain(v) for v in value]
    return value


