"""Property tests: no input, however odd, gets anything but a Command or a SPEC error."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.catalog import Catalog
from bridge.commands import PLAIN_ACTIONS, CommandParser
from bridge.config import parse_config
from bridge.discovery import name_devices
from bridge.errors import CommandError, ConfigError
from bridge.models import Command
from bridge.orange.api import ApiDevice
from bridge.topics import Topics, slug

SPEC_CODES = {"invalid_json", "invalid_command", "unknown_channel", "unknown_app",
              "unknown_key", "unknown_macro", "payload_too_large"}
PARSER = CommandParser(Catalog(), {"movie_night": Command(
    "macro", name="movie_night", steps=(Command("power", power="on"),))})
TOPIC_ACTIONS = [None, *PLAIN_ACTIONS, "dance", "", "set"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
command_like = st.fixed_dictionaries(
    {"action": st.sampled_from(["zap", "key", "launch", "power", "macro", "sequence", "wait",
                                "ZAP", "x"])},
    optional={"channel": json_values, "epg_id": json_values, "key": json_values,
              "mode": json_values, "repeat": json_values, "app": json_values,
              "app_id": json_values, "state": json_values, "name": json_values,
              "steps": json_values, "id": json_values, "ttl": json_values,
              "seconds": json_values},
)


def parse_outcome(payload: bytes, action: str | None) -> str:
    try:
        command = PARSER.parse(payload, action)
    except CommandError as exc:
        assert exc.code in SPEC_CODES, exc.code
        assert exc.message
        return exc.code
    assert isinstance(command, Command)
    return "ok"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(TOPIC_ACTIONS))
def test_arbitrary_bytes(payload: bytes, action: str | None) -> None:
    parse_outcome(payload, action)


@settings(max_examples=400, deadline=None)
@given(json_values, st.sampled_from(TOPIC_ACTIONS))
def test_arbitrary_json(value: Any, action: str | None) -> None:
    parse_outcome(json.dumps(value).encode(), action)


@settings(max_examples=600, deadline=None)
@given(command_like, st.sampled_from([None, *PLAIN_ACTIONS]))
def test_command_shaped_json(value: dict[str, Any], action: str | None) -> None:
    outcome = parse_outcome(json.dumps(value).encode(), action)
    if outcome == "ok" and action is None:
        assert value["action"].lower() in ("zap", "key", "launch", "power", "macro", "sequence")


def _level_ok(topic: str) -> bool:
    return all(level and not set(level) & {"+", "#", "\0"} for level in topic.split("/"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_friendly_names_make_safe_topics(names: list[str]) -> None:
    found = [ApiDevice(f"id{i}", name, "TV5", None) for i, name in enumerate(names)]
    devices = name_devices(found, {})
    topics = Topics("orangetv")
    segments = [d.friendly_name for d in devices]
    assert len(set(segments)) == len(segments)
    for segment in segments:
        assert segment not in ("bridge", "all") and slug(segment) == segment
        for topic in (topics.state(segment), topics.result(segment),
                      topics.availability(segment)):
            assert _level_ok(topic)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_topic_parsing_never_yields_bad_segments(topic: str) -> None:
    inbound = Topics("orangetv").parse(topic)
    if inbound.kind in ("command", "get"):
        assert inbound.segment and "/" not in inbound.segment
        assert _level_ok(Topics("orangetv").result(inbound.segment))


yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(
    max_size=15)
yaml_docs = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["mqtt", "orange", "port", "host", "api_url", "devices", "channels",
                         "macros", "triggers", "name", "tls", "retry", "commands", "ttl",
                         "client_id", "client_secret", "x", "apps", "logging", "level"]),
        children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(yaml_docs)
def test_config_loading_raises_only_config_error(document: Any) -> None:
    text = yaml.safe_dump(document)
    try:
        parse_config(yaml.safe_load(text))
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
