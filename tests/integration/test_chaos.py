"""Chaos: 500 commands over 5 decoders while the API misbehaves and the broker restarts.

Every command must get exactly one result; none may reach the simulator twice or after its
TTL; the bridge must still serve at the end. Bounded well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bridge.simulator import Simulator, SimulatorSettings
from tests.conftest import BridgeRunner
from tests.helpers import Broker

COMMANDS = 500
DECODERS = 5
TTL = 30.0


class DurableClient:
    """A flow's client with a persistent session, so results sent during the restart wait."""

    def __init__(self, port: int, base: str) -> None:
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="chaos-flow",
                                  protocol=paho.MQTTv311, clean_session=False)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{base}/+/result", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        result = json.loads(msg.payload)
        with self.lock:
            self.results.setdefault(str(result.get("id")), []).append(result)

    def count(self) -> int:
        with self.lock:
            return len(self.results)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_chaos(tmp_path: Path) -> None:
    broker = Broker(tmp_path, persistent=True)
    broker.start()
    sim = Simulator(SimulatorSettings(port=0, decoders=DECODERS)).start()
    sim.state.apply({"power": {"stb-0002": "ON"}})
    run = BridgeRunner(sim, broker, tmp_path)
    flow = None
    try:
        config = run.config(commands={"ttl": TTL, "queue_size": COMMANDS},
                            orange__timeout=1.0, devices={})
        bridge = await run.start(config)
        base = bridge.topics.base
        flow = DurableClient(broker.port, base)
        await asyncio.sleep(0.3)
        sim.state.apply({"random": {"p503": 0.15, "p429": 0.05, "p_hang": 0.004,
                                    "p_drop": 0.01, "retry_after": 0.5, "hang_seconds": 1.5,
                                    "seed": 7}})
        names = sorted(e.device.friendly_name for e in bridge.entries.values())
        sent_at: dict[str, float] = {}
        for i in range(COMMANDS):
            command_id = f"c{i}"
            payload = {"action": "zap", "epg_id": str(100_000 + i), "id": command_id}
            sent_at[command_id] = time.time()
            flow.client.publish(f"{base}/{names[i % DECODERS]}/set", json.dumps(payload), qos=1)
            if i == COMMANDS // 2:
                broker.stop()  # mid-run: the bridge and the flow both lose the broker
                await asyncio.sleep(0.5)
                broker.start()
            if i % 50 == 0:
                await asyncio.sleep(0.05)
        deadline = time.monotonic() + 45
        while flow.count() < COMMANDS:
            missing = sorted(set(sent_at) - set(flow.results), key=lambda c: int(c[1:]))
            ran = sum(1 for r in sim.requests() if r["executed"])
            assert time.monotonic() < deadline, (
                f"no result for {len(missing)}: {missing[:5]}; executed {ran}; "
                f"bridge connected {bridge.link.connected.is_set()}; "
                f"flow connected {flow.client.is_connected()}")
            await asyncio.sleep(0.1)
        sim.state.apply({"random": {}})

        # still serving
        flow.client.publish(f"{base}/{names[0]}/set",
                            json.dumps({"action": "zap", "channel": "TF1", "id": "final"}), qos=1)
        async with asyncio.timeout(10):
            while "final" not in flow.results:
                await asyncio.sleep(0.05)
        assert flow.results["final"][0]["ok"] is True

        executed: dict[str, list[dict[str, Any]]] = {}
        for request in sim.requests():
            if request["executed"] and request["path"].endswith("/zap"):
                executed.setdefault(request["body"]["epgId"], []).append(request)
        codes: dict[str, int] = {}
        for i in range(COMMANDS):
            command_id = f"c{i}"
            results = flow.results.get(command_id, [])
            # one result each: a QoS 1 redelivery is answered again with the same result
            assert results, f"{command_id}: no result"
            assert all(r == results[0] for r in results), f"{command_id}: different results"
            result = results[0]
            done = executed.get(str(100_000 + i), [])
            assert len(done) <= 1, f"{command_id} reached the simulator {len(done)} times"
            assert bool(done) == result["ok"], (command_id, result)
            if done:
                assert ts(done[0]["ts"]) <= sent_at[command_id] + TTL + 1
            code = "ok" if result["ok"] else result["error"]["code"]
            codes[code] = codes.get(code, 0) + 1
        assert codes.get("ok", 0) >= COMMANDS * 0.95, codes
        assert set(codes) <= {"ok", "api_unavailable", "timeout", "rate_limited", "expired"}
        faults = [r["fault"] for r in sim.requests() if r["fault"]]
        assert faults.count("503") > 30 and faults.count("429") > 5  # the chaos did happen
    finally:
        if flow is not None:
            flow.stop()
        await run.stop_all()
        sim.stop()
        broker.stop()
