"""``orangetv2mqtt demo``: simulator + bridge + broker, one command round trip, printed.

Uses the broker on 127.0.0.1 when one answers, else starts a private mosquitto on a free
port. The login goes through the real OAuth code flow against the simulator.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bridge.config import Config, parse_config
from bridge.localbroker import LocalBroker, port_open
from bridge.login import login_without_browser
from bridge.simulator import Simulator, SimulatorSettings

BASE = "orangetv"
ROUND_TRIP_TIMEOUT = 20.0


def demo_config(sim: Simulator, broker_port: int, folder: Path) -> Config:
    return parse_config({
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "base_topic": BASE,
                 "client_id": f"orangetv2mqtt-demo-{os.getpid()}"},
        "orange": {"api_url": sim.url, "auth_url": sim.auth_url, "client_id": "demo",
                   "client_secret": "demo", "token_file": str(folder / "token.json"),
                   "redirect_uri": "http://localhost:8765/callback"},
        "devices": {"stb-0001": {"name": "salon"}},
        "macros": {"movie_night": [{"action": "power", "state": "on"},
                                   {"action": "wait", "seconds": 1},
                                   {"action": "launch", "app": "netflix"}]},
    })


class Watcher:
    """A plain paho client, as a user's flow would be, to show what the bridge publishes."""

    def __init__(self, port: int) -> None:
        self.messages: dict[str, bytes] = {}
        self.changed = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"demo-watch-{os.getpid()}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{BASE}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.changed:
            self.messages[msg.topic] = bytes(msg.payload)
            self.changed.notify_all()

    def wait(self, topic: str, timeout: float, predicate: Any = None) -> Any:
        with self.changed:
            ok = self.changed.wait_for(
                lambda: topic in self.messages and (
                    predicate is None or predicate(json.loads(self.messages[topic]))),
                timeout)
        return json.loads(self.messages[topic]) if ok else None

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _demo(broker_port: int, once: bool, folder: Path) -> int:
    from bridge.app import Bridge

    mosquitto = None
    if not port_open(broker_port):
        try:
            mosquitto = LocalBroker(folder)
        except FileNotFoundError as exc:
            raise RuntimeError(f"no MQTT broker answers on 127.0.0.1:{broker_port} and "
                               f"{exc}") from exc
        mosquitto.start()
        broker_port = mosquitto.port
        print(f"• started a private mosquitto on 127.0.0.1:{broker_port}")
    else:
        print(f"• using the MQTT broker on 127.0.0.1:{broker_port}")
    sim = Simulator(SimulatorSettings(port=0)).start()
    print(f"• simulator (our model of Orange's API) on {sim.url}")
    config = demo_config(sim, broker_port, folder)
    await login_without_browser(config)
    print("• signed in through the OAuth code flow (demo account), token file 0600")
    bridge = Bridge(config)
    await bridge.start()
    watcher = await asyncio.to_thread(Watcher, broker_port)
    try:
        devices = await asyncio.to_thread(watcher.wait, f"{BASE}/bridge/devices", 10,
                                          lambda d: len(d) > 0)
        if devices is None:
            print("✗ the bridge published no devices", file=sys.stderr)
            return 1
        print(f"\n{BASE}/bridge/devices:")
        for d in devices:
            print(f"  - {d['friendly_name']:<20} {d['device_id']}  {d['name']}")
        command = {"action": "zap", "channel": "France 2", "id": "demo-1"}
        print(f"\n→ {BASE}/salon/set  {json.dumps(command)}")
        watcher.client.publish(f"{BASE}/salon/set", json.dumps(command), qos=1)
        result = await asyncio.to_thread(watcher.wait, f"{BASE}/salon/result", ROUND_TRIP_TIMEOUT,
                                         lambda r: r.get("id") == "demo-1")
        if result is None:
            print("✗ no result within 20 s", file=sys.stderr)
            return 1
        print(f"← {BASE}/salon/result  {json.dumps(result)}")
        state = await asyncio.to_thread(watcher.wait, f"{BASE}/salon", 5,
                                        lambda s: s.get("epg_id") == "4")
        if state is not None:
            print(f"← {BASE}/salon  {json.dumps(state)}")
        if not result.get("ok"):
            return 1
        port_flag = f" -p {broker_port}" if broker_port != 1883 else ""
        print(f"""
Round trip OK. Try it yourself while this runs:
  mosquitto_sub{port_flag} -v -t '{BASE}/#'
  mosquitto_pub{port_flag} -t {BASE}/salon/zap/set -m TF1
  mosquitto_pub{port_flag} -t {BASE}/salon/key/set -m vol+
  mosquitto_pub{port_flag} -t {BASE}/salon/set -m '{{"action":"launch","app":"netflix","id":"n1"}}'
  mosquitto_pub{port_flag} -t {BASE}/decodeur_orange_2/power/set -m ON
  mosquitto_pub{port_flag} -t {BASE}/salon/macro/set -m movie_night""")
        if once:
            return 0
        print("\nRunning; press Ctrl+C to stop.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        return 0
    finally:
        watcher.stop()
        await bridge.stop()
        sim.stop()
        if mosquitto is not None:
            mosquitto.stop()


def run_demo(broker_port: int, *, once: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="orangetv2mqtt-demo-") as folder:
        try:
            return asyncio.run(_demo(broker_port, once, Path(folder)))
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

