"""HA discovery payloads checked against the documented schema of each MQTT platform.

Keys and requirements from the Home Assistant docs (integrations button.mqtt, select.mqtt,
text.mqtt, sensor.mqtt, binary_sensor.mqtt, and "MQTT discovery": device and origin blocks).
Home Assistant itself cannot run here, so its schema is the next best check.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bridge.catalog import Catalog
from bridge.homeassistant import BUTTONS, DiscoveryBuilder
from bridge.models import Device
from bridge.topics import Topics

COMMON = {"availability", "availability_mode", "availability_template", "availability_topic",
          "device", "enabled_by_default", "encoding", "entity_category", "entity_picture",
          "icon", "json_attributes_template", "json_attributes_topic", "name", "origin",
          "payload_available", "payload_not_available", "platform", "qos", "unique_id",
          "default_entity_id"}
PLATFORMS: dict[str, tuple[set[str], set[str]]] = {  # component -> (required, allowed extra)
    "button": ({"command_topic"}, {"command_template", "device_class", "payload_press",
                                   "retain"}),
    "select": ({"command_topic", "options"}, {"command_template", "optimistic", "retain",
                                              "state_topic", "value_template"}),
    "text": ({"command_topic"}, {"command_template", "max", "min", "mode", "pattern", "retain",
                                 "state_topic", "value_template"}),
    "sensor": ({"state_topic"}, {"device_class", "expire_after", "force_update",
                                 "last_reset_value_template", "options", "state_class",
                                 "suggested_display_precision", "unit_of_measurement",
                                 "value_template"}),
    "binary_sensor": ({"state_topic"}, {"device_class", "expire_after", "force_update",
                                        "off_delay", "payload_off", "payload_on",
                                        "value_template"}),
}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer",
               "model", "model_id", "name", "serial_number", "suggested_area", "sw_version",
               "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
ID = re.compile(r"^[a-zA-Z0-9_-]+$")


def check(topic: str, config: dict[str, Any]) -> str:
    prefix, component, object_id, last = topic.split("/")
    assert (prefix, last) == ("homeassistant", "config") and ID.match(object_id)
    required, extra = PLATFORMS[component]
    assert required <= set(config), f"{topic}: missing {required - set(config)}"
    assert set(config) <= COMMON | required | extra, f"{topic}: {set(config) - COMMON - extra}"
    assert set(config["device"]) <= DEVICE_KEYS and config["device"]["identifiers"]
    assert set(config["origin"]) <= ORIGIN_KEYS and config["origin"]["name"]
    assert "+" not in config.get("command_topic", "") and "#" not in config.get("state_topic", "")
    return component


@pytest.fixture
def builder() -> DiscoveryBuilder:
    return DiscoveryBuilder(Topics("orangetv"), "homeassistant", Catalog(channels={"Ma TV": "9"}))


def test_every_entity_matches_its_platform_schema(builder: DiscoveryBuilder) -> None:
    device = Device("stb:0001", "Decodeur Orange", "TV5", None, "salon")
    entities = builder.device(device)
    components = [check(e.topic, e.config) for e in entities]
    assert components.count("button") == len(BUTTONS) == 15
    assert components.count("select") == 2 and components.count("text") == 1
    assert components.count("sensor") == 2
    keys = {e.config["unique_id"].split("_", 1)[1].rsplit("_", 1)[0] for e in entities}
    assert keys == {*BUTTONS, "channel", "app", "channel_number", "power", "last_result"}
    bridge_entity = builder.bridge()[0]
    assert check(bridge_entity.topic, bridge_entity.config) == "binary_sensor"
    assert bridge_entity.config["device_class"] == "connectivity"


def test_ids_availability_and_topics(builder: DiscoveryBuilder) -> None:
    device = Device("stb:0001", "Decodeur Orange", "TV5", None, "salon")
    by_key = {e.config["unique_id"]: e for e in builder.device(device)}
    power_on = by_key["stb:0001_power_on_orangetv"]
    assert power_on.topic == "homeassistant/button/orangetv_stb_0001_power_on/config"
    assert power_on.config["command_topic"] == "orangetv/salon/power/set"
    assert power_on.config["payload_press"] == "ON"
    assert by_key["stb:0001_vol_up_orangetv"].config["command_topic"] == "orangetv/salon/key/set"
    assert power_on.config["availability"] == [{"topic": "orangetv/bridge/state"},
                                               {"topic": "orangetv/salon/availability"}]
    assert power_on.config["availability_mode"] == "all"
    assert power_on.config["device"]["via_device"] == builder.bridge()[0].config[
        "device"]["identifiers"][0]
    assert power_on.config["device"]["manufacturer"] == "Orange"
    channel = by_key["stb:0001_channel_orangetv"].config
    assert channel["options"][0] == "TF1" and "Ma TV" in channel["options"]
    assert "La Chaîne L'Équipe" in channel["options"]  # names as written in CATALOG.md


def test_unique_ids_survive_renames(builder: DiscoveryBuilder) -> None:
    before = builder.device(Device("id1", "A", "TV5", None, "salon"))
    after = builder.device(Device("id1", "A", "TV5", None, "chambre"))
    assert [e.config["unique_id"] for e in before] == [e.config["unique_id"] for e in after]
    assert [e.topic for e in before] == [e.topic for e in after]
    assert after[0].config["command_topic"].startswith("orangetv/chambre/")


def test_is_ours(builder: DiscoveryBuilder) -> None:
    assert builder.is_ours("homeassistant/button/orangetv_x_ok/config")
    assert not builder.is_ours("homeassistant/button/zigbee_x/config")
    assert not builder.is_ours("homeassistant/button/orangetv2_x/config")
