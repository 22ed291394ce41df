from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_config, masked, parse_config
from bridge.errors import ConfigError

MINIMAL = {"orange": {"api_url": "http://127.0.0.1:8900", "client_id": "id",
                      "client_secret": "s3cr3t"}}


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_defaults_from_spec() -> None:
    config = parse_config(MINIMAL, base_dir=Path("/etc/otv"))
    assert config.mqtt.port == 1883
    assert config.mqtt.base_topic == "orangetv"
    assert config.mqtt.protocol == 5
    assert config.orange.auth_url == "https://api.orange.com/openidconnect/fr/v1"
    assert config.orange.retry.max_attempts == 4
    assert config.orange.rate_limit.per_minute == 60
    assert config.orange.token_file == Path("/etc/otv/orangetv2mqtt-token.json")
    assert config.commands.ttl == 30
    assert config.commands.queue_size == 20
    assert config.homeassistant.prefix == "homeassistant"
    assert config.logging.format == "text"


def test_tls_changes_default_port() -> None:
    config = parse_config({**MINIMAL, "mqtt": {"tls": {"enabled": True}}})
    assert config.mqtt.port == 8883


def test_exact_error_text_and_all_problems_at_once() -> None:
    found = problems({
        "mqtt": {"port": "abc", "protocol": 4, "hots": "x"},
        "orange": {"client_id": "a", "client_secret": "b", "timeout": -1},
        "commands": {"queue_size": 0},
        "logging": {"format": "xml"},
    })
    assert found == [
        "mqtt.port: expected an integer 1-65535, got 'abc'",
        "mqtt.protocol: expected one of 5, 3, got 4",
        "mqtt.hots: unknown key (check the spelling)",
        "orange.api_url: is required",
        "orange.timeout: expected a number 0.1-300, got -1",
        "commands.queue_size: expected an integer 1-10000, got 0",
        "logging.format: expected one of text, json, got 'xml'",
    ]


def test_env_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MQTT_PASS", "pw")
    monkeypatch.delenv("NOPE", raising=False)
    config = parse_config({**MINIMAL, "mqtt": {"password": "${MQTT_PASS}",
                                               "host": "${NOPE:-broker.lan}",
                                               "port": "${NOPE:-1884}"}})
    assert config.mqtt.password == "pw"
    assert config.mqtt.host == "broker.lan"
    assert config.mqtt.port == 1884


def test_unset_env_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORANGE_CLIENT_SECRET", raising=False)
    found = problems({"orange": {"api_url": "http://x", "client_id": "a"}})
    assert found == ["orange.client_secret: environment variable ORANGE_CLIENT_SECRET is not set"]


def test_secret_never_shown_in_errors_or_dump() -> None:
    found = problems({**MINIMAL, "mqtt": {"password": ["hunter2"]}})
    assert "hunter2" not in "\n".join(found)
    config = parse_config({**MINIMAL, "mqtt": {"password": "hunter2"}})
    dump = str(masked(config))
    assert "hunter2" not in dump and "s3cr3t" not in dump
    assert masked(config)["orange"]["client_secret"] == "***"


def test_wrong_section_types() -> None:
    assert problems({**MINIMAL, "mqtt": "localhost"}) == [
        "mqtt: expected a mapping, got 'localhost'"]
    assert problems([1, 2]) == ["config: expected a mapping, got [1, 2]"]
    assert problems("just text") == ["config: expected a mapping, got 'just text'"]


def test_devices_names_checked() -> None:
    found = problems({**MINIMAL, "devices": {"a": {"name": "Salon TV"}, "b": {"name": "all"},
                                             "c": {"name": "x"}, "d": {"name": "x"}}})
    assert found == [
        "devices.a.name: use lowercase letters, digits, _ or - (like 'salon_tv'), got 'Salon TV'",
        "devices.b.name: 'all' is reserved, got 'all'",
        "devices.d.name: already used by another device, got 'x'",
    ]


def test_macros_and_triggers_validated_with_catalog() -> None:
    found = problems({**MINIMAL,
                      "macros": {"m": [{"action": "zap", "channel": "TF11"}]},
                      "triggers": [{"topic": "a/#/b", "device": "salon",
                                    "command": {"action": "launch", "app": "netflix"}}]})
    assert found[0].startswith("macros.m[0].channel: unknown channel 'TF11'; did you mean TF1")
    assert found[1] == "triggers[0].topic: not a valid MQTT topic filter, got 'a/#/b'"


def test_custom_channels_extend_catalog() -> None:
    config = parse_config({**MINIMAL, "channels": {"Ma Chaine": 999}, "apps": {"Molotov": "MOLO"}})
    catalog = config.catalog()
    assert catalog.channel("ma chaine") is not None
    assert catalog.channel("ma chaine").epg_id == "999"  # type: ignore[union-attr]
    assert catalog.app("molotov").app_id == "MOLO"  # type: ignore[union-attr]


def test_load_config_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert "cannot read the config file" in info.value.problems[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt:\n  port: [1\n")
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.problems[0].startswith(f"{bad}: not valid YAML at line")


def test_example_config_is_valid() -> None:
    config = load_config(Path(__file__).parents[2] / "config.example.yaml")
    assert config.devices == {"stb-0001": "salon"}
    assert config.macros["movie_night"].steps[2].app_id == "NETFLIX"
    assert len(config.triggers) == 2
