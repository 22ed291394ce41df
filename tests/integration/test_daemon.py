"""The daemon end to end: a real mosquitto, our simulator, and a separate MQTT client."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import bridge.tokens
from bridge.app import Bridge
from bridge.simulator import Simulator
from tests.conftest import BridgeRunner
from tests.helpers import Broker, Probe, write_token_file


def executed(sim: Simulator, path_end: str = "") -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["executed"] and r["path"].endswith(path_end)]


async def started(runner: BridgeRunner, probe: Probe, **overrides: Any) -> tuple[Bridge, str]:
    bridge = await runner.start(runner.config(**overrides))
    base = bridge.topics.base
    probe.subscribe(f"{base}/#")
    await settled(bridge)
    return bridge, base


async def settled(bridge: Bridge) -> None:
    """Wait until the status calls that follow discovery are answered."""
    async with asyncio.timeout(10):
        while any(e.refreshing for e in bridge.entries.values()):
            await asyncio.sleep(0.01)


async def test_startup_publishes_bridge_devices_state(runner: BridgeRunner, probe: Probe) -> None:
    _bridge, b = await started(runner, probe)
    assert await probe.wait(f"{b}/bridge/state", lambda p: p == "online", raw=True)
    devices = await probe.wait(f"{b}/bridge/devices", lambda d: len(d) == 2)
    assert devices[0] == {"device_id": "stb-0001", "name": "Decodeur Orange",
                          "friendly_name": "salon", "model": "TV5",
                          "last_seen": "2026-12-01T18:00:00Z", "available": True}
    assert devices[1]["friendly_name"] == "decodeur_orange_2"
    info = await probe.wait(f"{b}/bridge/info", lambda i: i["devices"] == 2)
    assert info["auth"] == "ok" and info["api"] == "ok" and info["base_topic"] == b
    assert info["api_url"] == runner.simulator.url and "version" in info
    state = await probe.wait(f"{b}/salon", lambda s: s.get("power") == "on")
    assert state["epg_id"] == "192" and state["channel"] == "TF1"
    assert await probe.wait(f"{b}/decodeur_orange_2", lambda s: s.get("power") == "standby")
    assert await probe.wait(f"{b}/salon/availability", lambda p: p == "online", raw=True)
    late = Probe(runner.broker.port)  # a client that comes later gets the retained copies
    try:
        late.subscribe(f"{b}/bridge/devices")
        await late.wait(f"{b}/bridge/devices", lambda d: len(d) == 2)
        assert late.on(f"{b}/bridge/devices")[0].retain
    finally:
        late.stop()


async def test_json_zap_round_trip(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "France 2", "id": "z1"})
    result = await probe.result(f"{b}/salon/result", "z1")
    assert result["ok"] is True and result["attempts"] == 1
    assert (result["device"], result["device_id"], result["action"]) == (
        "salon", "stb-0001", "zap")
    assert isinstance(result["duration_ms"], int) and result["ts"].endswith("Z")
    assert executed(runner.simulator, "/zap")[-1]["body"] == {"epgId": "4"}
    state = await probe.wait(f"{b}/salon", lambda s: s.get("epg_id") == "4")
    assert state["channel"] == "France 2" and state["last_command"] == "zap France 2"


@pytest.mark.parametrize(("topic", "payload", "path", "body"), [
    ("zap/set", "TF1", "/zap", {"epgId": "192"}),
    ("key/set", "VOL_UP", "/keys", {"key": "VOL_UP", "mode": "SHORT"}),
    ("launch/set", "netflix", "/applications/launch", {"applicationId": "NETFLIX"}),
    ("power/set", "OFF", "/standby", None),
])
async def test_plain_topics(runner: BridgeRunner, probe: Probe, topic: str, payload: str,
                            path: str, body: Any) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/salon/{topic}", payload)
    result = await probe.wait(f"{b}/salon/result")
    assert result["ok"] is True and result["id"] is None
    assert executed(runner.simulator, path)[-1]["body"] == body


async def test_device_id_works_as_segment_and_result_goes_there(runner: BridgeRunner,
                                                                probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/stb-0001/zap/set", "M6")
    result = await probe.wait(f"{b}/stb-0001/result")
    assert result["ok"] and result["device"] == "stb-0001"


@pytest.mark.parametrize(("segment", "payload", "code", "fragment"), [
    ("nowhere", '{"action":"zap","channel":"TF1","id":"u1"}', "unknown_device", "nowhere"),
    ("salon", '{"action":"zap","channel":"TF1"', "invalid_json", "not valid JSON"),
    ("salon", '{"action":"zap","chanel":"TF1","id":"u2"}', "invalid_command", "chanel"),
    ("salon", '{"action":"zap","channel":"TF11","id":"u3"}', "unknown_channel", "TF1"),
    ("salon", '{"action":"launch","app":"netflux"}', "unknown_app", "Netflix"),
    ("salon", '{"action":"key","key":"vol++"}', "unknown_key", "vol"),
    ("salon", '{"action":"macro","name":"party"}', "unknown_macro", "party"),
    ("decodeur_orange_2", '{"action":"zap","channel":"TF1"}', "device_standby", "standby"),
])
async def test_bad_input_gets_a_clear_result(runner: BridgeRunner, probe: Probe, segment: str,
                                             payload: str, code: str, fragment: str) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/{segment}/set", payload)
    result = await probe.wait(f"{b}/{segment}/result")
    assert result["ok"] is False and result["error"]["code"] == code
    assert fragment in result["error"]["message"]
    assert not executed(runner.simulator, "/zap")
    probe.publish(f"{b}/salon/zap/set", "M6")  # and the bridge still serves
    assert (await probe.wait(f"{b}/salon/result", lambda r: r["ok"]))["action"] == "zap"


async def test_oversized_and_binary_payloads(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/salon/set", b'{"id":"big","x":"' + b"y" * 70_000 + b'"}')
    result = await probe.wait(f"{b}/salon/result")
    assert result["error"]["code"] == "payload_too_large" and result["id"] is None
    probe.publish(f"{b}/salon/zap/set", b"\xff\xfe\x00")
    assert await probe.wait(f"{b}/salon/result",
                            lambda r: "UTF-8" in r.get("error", {}).get("message", ""))


async def test_retained_command_is_never_executed(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "r1"}, retain=True)
    result = await probe.result(f"{b}/salon/result", "r1")
    assert result["ok"] is False and result["error"]["code"] == "invalid_command"
    assert "retained" in result["error"]["message"]
    # a bridge started later finds the retained message on subscribe: still not executed
    late = await runner.start(runner.config(base_topic=b))
    await asyncio.sleep(0.3)  # give the retained delivery a chance to (wrongly) run
    assert late.discovered.is_set()
    assert not executed(runner.simulator, "/zap")
    probe.publish(f"{b}/salon/set", b"", retain=True)  # clean up the retained message


async def test_retry_then_success(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    runner.simulator.state.apply({"queue": [{"status": 503}, {"status": 429, "retry_after": 0.1}]})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "Arte", "id": "t1"})
    result = await probe.result(f"{b}/salon/result", "t1")
    assert result["ok"] is True and result["attempts"] == 3
    assert len(executed(runner.simulator, "/zap")) == 1


async def test_order_per_decoder_and_parallel_decoders(runner: BridgeRunner, probe: Probe
                                                       ) -> None:
    runner.simulator.state.apply({"add_devices": [{"deviceId": "stb-0003", "name": "Chambre"}]})
    _, b = await started(runner, probe)
    runner.simulator.state.apply({"latency_ms": 150})
    channels = ["TF1", "M6", "Arte", "W9"]
    for index, channel in enumerate(channels):
        probe.publish(f"{b}/salon/zap/set", channel)
        probe.publish(f"{b}/chambre/set", {"action": "zap", "channel": channel,
                                           "id": f"c{index}"})
    await probe.result(f"{b}/chambre/result", "c3", timeout=15)
    await probe.wait(f"{b}/salon/result", lambda r: len(probe.on(f"{b}/salon/result")) >= 4)
    zaps = executed(runner.simulator, "/zap")
    per_device = {d: [r["body"]["epgId"] for r in zaps if f"/{d}/" in r["path"]]
                  for d in ("stb-0001", "stb-0003")}
    assert per_device["stb-0001"] == per_device["stb-0003"] == ["192", "118", "111", "119"]
    devices_in_log_order = [r["path"].split("/")[2] for r in zaps]
    # concurrent queues interleave; one shared queue would log all of one decoder first
    assert devices_in_log_order[:4] != ["stb-0001"] * 4
    assert devices_in_log_order[:4] != ["stb-0003"] * 4


async def test_ttl_expired_command_is_never_sent(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe, commands={"ttl": 1, "queue_size": 20})
    probe.publish(f"{b}/salon/set", {"action": "sequence", "id": "slow",
                                     "steps": [{"action": "wait", "seconds": 2}]})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "late"})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "W9", "id": "ok", "ttl": 10})
    late = await probe.result(f"{b}/salon/result", "late")
    assert late["ok"] is False and late["error"]["code"] == "expired"
    assert (await probe.result(f"{b}/salon/result", "ok"))["ok"] is True
    assert [r["body"]["epgId"] for r in executed(runner.simulator, "/zap")] == ["119"]


async def test_ttl_stops_retries(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    runner.simulator.state.apply({"queue": [{"status": 429, "retry_after": 30}]})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "x", "ttl": 2})
    result = await probe.result(f"{b}/salon/result", "x")
    assert result["error"]["code"] == "expired" and result["attempts"] == 1
    assert not executed(runner.simulator, "/zap")
    info = await probe.wait(f"{b}/bridge/info", lambda i: i["last_error"] is not None)
    assert info["last_error"]["code"] == "expired"


async def test_duplicate_id_is_not_executed_twice(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    for _ in range(2):
        probe.publish(f"{b}/salon/key/set", '{"key":"vol+","id":"dup"}')
    await probe.wait(f"{b}/salon/result", lambda r: len(probe.on(f"{b}/salon/result")) >= 2)
    results = [m.json() for m in probe.on(f"{b}/salon/result")]
    assert [r["id"] for r in results] == ["dup", "dup"] and results[0] == results[1]
    assert len(executed(runner.simulator, "/keys")) == 1


async def test_queue_full(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe, commands={"ttl": 30, "queue_size": 1})
    probe.publish(f"{b}/salon/set", {"action": "sequence", "id": "busy",
                                     "steps": [{"action": "wait", "seconds": 0.5}]})
    await asyncio.sleep(0.1)  # let the worker take the sequence (in progress, not waiting)
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "q1"})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "W9", "id": "q2"})
    refused = await probe.result(f"{b}/salon/result", "q2")
    assert refused["error"]["code"] == "queue_full" and refused["error"]["retryable"] is True
    assert (await probe.result(f"{b}/salon/result", "q1"))["ok"] is True


async def test_sequence_and_macro_results(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe, macros={"wake": [
        {"action": "power", "state": "on"}, {"action": "wait", "seconds": 0.1},
        {"action": "launch", "app": "netflix"}]})
    probe.publish(f"{b}/decodeur_orange_2/macro/set", "wake")
    result = await probe.wait(f"{b}/decodeur_orange_2/result")
    assert result["ok"] and result["action"] == "macro" and result["steps"] == 3
    assert result["attempts"] == 2
    probe.publish(f"{b}/salon/set", {"action": "sequence", "id": "s1", "steps": [
        {"action": "zap", "channel": "M6"}, {"action": "launch", "app_id": "NOPE"},
        {"action": "zap", "channel": "W9"}]})
    failed = await probe.result(f"{b}/salon/result", "s1")
    assert failed["ok"] is False and failed["failed_step"] == 1 and failed["steps"] == 1
    assert failed["error"]["code"] == "bad_request"
    assert [r["body"]["epgId"] for r in executed(runner.simulator, "/zap")] == ["118"]


async def test_all_fans_out(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.publish(f"{b}/all/power/set", "ON")
    assert (await probe.wait(f"{b}/salon/result"))["ok"]
    assert (await probe.wait(f"{b}/decodeur_orange_2/result"))["ok"]
    assert len(executed(runner.simulator, "/power-on")) == 2


async def test_mqtt5_request_response(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    probe.subscribe("replies/flow1")
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "TF1", "id": "rr"},
                  response_topic="replies/flow1", correlation=b"corr-42")
    reply = await probe.result("replies/flow1", "rr")
    assert reply["ok"] is True
    assert [m.correlation for m in probe.on("replies/flow1")] == [b"corr-42"]


async def test_get_refreshes_state_from_api(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    await probe.wait(f"{b}/salon", lambda s: s.get("power") == "on")
    runner.simulator.state.apply({"power": {"stb-0001": "LIGHT_STANDBY"}})
    probe.publish(f"{b}/salon/get", "")
    state = await probe.wait(f"{b}/salon", lambda s: s.get("power") == "standby")
    assert state["epg_id"] is None


async def test_status_not_offered_means_assumed_state(runner: BridgeRunner, probe: Probe
                                                      ) -> None:
    runner.simulator.state.apply({"status_offered": False})
    bridge, b = await started(runner, probe)
    probe.publish(f"{b}/salon/zap/set", "M6")
    state = await probe.wait(f"{b}/salon", lambda s: s.get("epg_id") == "118")
    assert state["power"] == "on" and bridge.status_offered is False
    status_calls = [r for r in runner.simulator.requests() if r["path"].endswith("/status")]
    assert len(status_calls) <= 2  # one per decoder at discovery, then never again


async def test_discover_request_and_vanished_decoder(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    runner.simulator.state.apply({"remove_devices": ["stb-0002"]})
    probe.publish(f"{b}/bridge/request/discover", {"id": "d1"})
    response = await probe.wait(f"{b}/bridge/response/discover", lambda r: r["id"] == "d1")
    assert response["ok"] and [d["device_id"] for d in response["devices"]] == ["stb-0001"]
    assert await probe.wait(f"{b}/decodeur_orange_2/availability", lambda p: p == "offline",
                            raw=True)
    assert await probe.wait(f"{b}/bridge/devices", lambda d: len(d) == 1)
    probe.publish(f"{b}/decodeur_orange_2/zap/set", "TF1")
    gone = await probe.wait(f"{b}/decodeur_orange_2/result")
    assert gone["error"]["code"] == "unknown_device"


async def test_republish_request(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe)
    await probe.wait(f"{b}/bridge/devices")
    before = len(probe.on(f"{b}/bridge/devices"))
    probe.publish(f"{b}/bridge/request/republish", '{"id":"r"}')
    assert (await probe.wait(f"{b}/bridge/response/republish"))["id"] == "r"
    assert await probe.wait(f"{b}/bridge/devices",
                            lambda _: len(probe.on(f"{b}/bridge/devices")) > before)


async def test_triggers(runner: BridgeRunner, probe: Probe) -> None:
    _, b = await started(runner, probe, triggers=[
        {"topic": "zigbee2mqtt/+/action_test", "match": {"action": "single"}, "device": "salon",
         "command": {"action": "zap", "channel": "TF1"}},
        {"topic": "shellies/button1/input_event/0", "payload": "S", "device": "salon",
         "command": {"action": "key", "key": "mute"}},
    ])
    probe.publish("zigbee2mqtt/btn/action_test", {"action": "double"})
    probe.publish("shellies/button1/input_event/0", "L")
    probe.publish("zigbee2mqtt/btn/action_test", {"action": "single", "battery": 90})
    probe.publish("shellies/button1/input_event/0", "S")
    await probe.wait(f"{b}/salon/result", lambda r: len(probe.on(f"{b}/salon/result")) >= 2)
    assert [r["body"] for r in executed(runner.simulator)] == [
        {"epgId": "192"}, {"key": "MUTE", "mode": "SHORT"}]


async def test_login_required_then_recovered(runner: BridgeRunner, probe: Probe,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge.tokens, "TOKEN_FILE_RECHECK", 0.2)
    config = runner.config()
    b = config.mqtt.base_topic
    probe.subscribe(f"{b}/#")
    bridge_ = await runner.start(config, token=False, wait_devices=False)
    info = await probe.wait(f"{b}/bridge/info", lambda i: i["auth"] == "login_required")
    assert info["devices"] == 0
    assert await probe.wait(f"{b}/bridge/state", lambda p: p == "online", raw=True)
    probe.publish(f"{b}/salon/zap/set", "TF1")
    result = await probe.wait(f"{b}/salon/result")
    assert result["error"]["code"] == "auth_required"
    assert "orangetv2mqtt login" in result["error"]["message"]
    write_token_file(runner.simulator, config.orange.token_file)  # what `login` does
    await asyncio.wait_for(bridge_.discovered.wait(), 10)
    assert await probe.wait(f"{b}/bridge/info", lambda i: i["auth"] == "ok" and i["devices"] == 2)
    probe.publish(f"{b}/salon/zap/set", "M6")
    assert await probe.wait(f"{b}/salon/result", lambda r: r["ok"])


async def test_broker_restart(simulator: Simulator, own_broker: Broker, tmp_path: Path) -> None:
    run = BridgeRunner(simulator, own_broker, tmp_path)
    try:
        bridge_ = await run.start()
        b = bridge_.topics.base
        own_broker.stop()
        await asyncio.sleep(0.5)
        assert not bridge_.link.connected.is_set()
        own_broker.start()
        await asyncio.wait_for(bridge_.link.connected.wait(), 15)
        probe = Probe(own_broker.port)
        try:
            probe.subscribe(f"{b}/#")
            # persistence is off: only a republish by the bridge can have put these back
            assert await probe.wait(f"{b}/bridge/state", lambda p: p == "online", raw=True)
            assert await probe.wait(f"{b}/bridge/devices", lambda d: len(d) == 2)
            assert await probe.wait(f"{b}/salon/availability", lambda p: p == "online", raw=True)
            probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "after"})
            assert (await probe.result(f"{b}/salon/result", "after"))["ok"]
        finally:
            probe.stop()
    finally:
        await run.stop_all()


async def test_mqtt_311(runner: BridgeRunner, broker: Broker) -> None:
    config = runner.config(mqtt={"host": "127.0.0.1", "port": broker.port, "protocol": 3,
                                 "base_topic": "v311", "client_id": "bridge-v311"})
    await runner.start(config)
    probe = Probe(broker.port, protocol=3)
    try:
        probe.subscribe("v311/#")
        probe.publish("v311/salon/set", json.dumps({"action": "zap", "channel": "M6", "id": "v3"}))
        assert (await probe.result("v311/salon/result", "v3"))["ok"]
    finally:
        probe.stop()
