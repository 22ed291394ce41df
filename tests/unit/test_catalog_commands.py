from __future__ import annotations

import json

import pytest

from bridge.catalog import Catalog, normalize
from bridge.commands import CommandParser
from bridge.errors import CommandError
from bridge.models import Command


@pytest.fixture
def parser() -> CommandParser:
    macro = Command("macro", name="movie_night",
                    steps=(Command("power", power="on"), Command("wait", seconds=1.0)))
    return CommandParser(Catalog(), {"movie_night": macro})


def refused(parser: CommandParser, payload: bytes | str, action: str | None = None
            ) -> CommandError:
    data = payload.encode() if isinstance(payload, str) else payload
    with pytest.raises(CommandError) as info:
        parser.parse(data, action)
    return info.value


@pytest.mark.parametrize(("name", "epg"), [
    ("TF1", "192"), ("tf1", "192"), ("France 2", "4"), ("france2", "4"), ("FRANCE_2", "4"),
    ("Canal+", "34"), ("canalplus", "34"), ("c+", "34"), ("public senat", "234"),
    ("france info", "2111"), ("La Chaîne L'Équipe", "1401"), ("la chaine l equipe", "1401"),
    ("1", "192"), ("40", "34"), ("nt1", "446"),
])
def test_channel_aliases(name: str, epg: str) -> None:
    channel = Catalog().channel(name)
    assert channel is not None and channel.epg_id == epg


@pytest.mark.parametrize(("name", "key"), [
    ("vol+", "VOL_UP"), ("VOLUME_UP", "VOL_UP"), ("vol-", "VOL_DOWN"), ("ch+", "CH_UP"),
    ("P+", "CH_UP"), ("p-", "CH_DOWN"), ("ok", "OK"), ("retour", "BACK"), ("7", "7"),
    ("digit_3", "3"), ("play", "PLAY_PAUSE"), ("epg", "GUIDE"),
])
def test_key_aliases(name: str, key: str) -> None:
    assert Catalog().key(name) == key


def test_apps_and_overrides() -> None:
    catalog = Catalog(channels={"TF1": "999"}, apps={"netflix": "NFX"})
    assert catalog.channel("TF1").epg_id == "999"  # type: ignore[union-attr]
    assert catalog.channel("1").epg_id == "999"  # type: ignore[union-attr]
    assert catalog.app("Netflix").app_id == "NFX"  # type: ignore[union-attr]
    assert Catalog().app("amazon prime").app_id == "PRIME_VIDEO"  # type: ignore[union-attr]
    assert Catalog().app("disney+").app_id == "DISNEY_PLUS"  # type: ignore[union-attr]


def test_normalize_keeps_plus_and_minus_apart() -> None:
    assert normalize("vol+") != normalize("vol-")
    assert normalize("Télé-Loisirs") == "teleloisirs"


def test_json_commands(parser: CommandParser) -> None:
    zap = parser.parse(b'{"action":"zap","channel":"France 2","id":"a1","ttl":5}')
    assert (zap.epg_id, zap.channel, zap.id, zap.ttl) == ("4", "France 2", "a1", 5.0)
    assert parser.parse(b'{"action":"zap","channel":1}').epg_id == "192"
    assert parser.parse(b'{"action":"zap","epg_id":"77777"}').epg_id == "77777"
    key = parser.parse(b'{"action":"key","key":"vol+","mode":"long","repeat":3}')
    assert (key.key, key.mode, key.repeat) == ("VOL_UP", "LONG", 3)
    assert parser.parse(b'{"action":"launch","app":"netflix"}').app_id == "NETFLIX"
    assert parser.parse(b'{"action":"launch","app_id":"ANY_ID"}').app_id == "ANY_ID"
    assert parser.parse(b'{"action":"power","state":"off"}').power == "standby"
    macro = parser.parse(b'{"action":"macro","name":"Movie_Night"}')
    assert macro.name == "movie_night" and len(macro.steps) == 2
    seq = parser.parse(json.dumps({"action": "sequence", "steps": [
        {"action": "power", "state": "on"}, {"action": "wait", "seconds": 2},
        {"action": "zap", "channel": "M6"}]}).encode())
    assert [s.action for s in seq.steps] == ["power", "wait", "zap"]


@pytest.mark.parametrize(("action", "payload", "expected"), [
    ("zap", "TF1", ("zap", "192")), ("zap", '"france 2"', ("zap", "4")),
    ("zap", "6", ("zap", "118")),
    ("key", "VOL_UP", ("key", "VOL_UP")), ("launch", "netflix", ("launch", "NETFLIX")),
    ("power", "ON", ("power", "on")), ("power", "OFF", ("power", "standby")),
    ("macro", "movie_night", ("macro", "movie_night")),
    ("zap", '{"channel":"M6"}', ("zap", "118")),
])
def test_plain_payloads(parser: CommandParser, action: str, payload: str,
                        expected: tuple[str, str]) -> None:
    command = parser.parse(payload.encode(), action)
    value = command.epg_id or command.key or command.app_id or command.power or command.name
    assert (command.action, value) == expected


@pytest.mark.parametrize(("payload", "action", "code", "fragment"), [
    (b"{nope", None, "invalid_json", "payload is not valid JSON"),
    (b"\xff\xfe", None, "invalid_json", "not valid UTF-8"),
    (b"[1,2]", None, "invalid_command", "must be a JSON object"),
    (b'{"action":"dance"}', None, "invalid_command", "action: expected one of"),
    (b'{"channel":"TF1"}', None, "invalid_command", "action: expected one of"),
    (b'{"action":"zap","chanel":"TF1"}', None, "invalid_command", "chanel: unknown field"),
    (b'{"action":"zap"}', None, "invalid_command", "channel: give exactly one"),
    (b'{"action":"zap","channel":"TF11"}', None, "unknown_channel", "did you mean TF1"),
    (b'{"action":"zap","channel":true}', None, "invalid_command", "channel: expected"),
    (b'{"action":"key","key":"VOL_UPP"}', None, "unknown_key", "did you mean VOL_UP"),
    (b'{"action":"key","key":"OK","mode":"double"}', None, "invalid_command", "mode:"),
    (b'{"action":"key","key":"OK","repeat":0}', None, "invalid_command", "repeat:"),
    (b'{"action":"launch","app":"netflux"}', None, "unknown_app", "did you mean Netflix"),
    (b'{"action":"power","state":"maybe"}', None, "invalid_command", "state:"),
    (b'{"action":"macro","name":"party"}', None, "unknown_macro", "movie_night"),
    (b'{"action":"zap","channel":"TF1","id":5}', None, "invalid_command", "id:"),
    (b'{"action":"zap","channel":"TF1","id":"' + b"x" * 65 + b'"}', None, "invalid_command", "id:"),
    (b'{"action":"zap","channel":"TF1","ttl":-1}', None, "invalid_command", "ttl:"),
    (b'{"action":"sequence","steps":[]}', None, "invalid_command", "steps:"),
    (b'{"action":"sequence","steps":[{"action":"wait","seconds":61}]}', None,
     "invalid_command", "steps[0].seconds"),
    (b'{"action":"sequence","steps":[{"action":"sequence","steps":[]}]}', None,
     "invalid_command", "steps[0].action"),
    (b"", "zap", "invalid_command", "channel: the payload is empty"),
    (b"TF1", "dance", "invalid_command", "unknown action topic 'dance'"),
    (b'{"action":"key","key":"OK"}', "zap", "invalid_command", "does not match the topic"),
    (b"x" * (64 * 1024 + 1), None, "payload_too_large", "limit is 65536"),
])
def test_refusals_name_the_field(parser: CommandParser, payload: bytes, action: str | None,
                                 code: str, fragment: str) -> None:
    error = refused(parser, payload, action)
    assert error.code == code
    assert fragment in error.message
