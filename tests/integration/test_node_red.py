"""The example Node-RED flow, run by a real Node-RED against the test broker and simulator.

Node-RED comes from npm into a temp folder (skipped outside CI when npm is missing). The test
presses the flow's inject buttons through Node-RED's admin HTTP API and reads what its debug
nodes show through the editor's websocket (/comms), as the sidebar would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.localbroker import free_port
from tests.conftest import BridgeRunner
from tests.helpers import in_ci

ROOT = Path(__file__).parents[2]
FLOW = ROOT / "examples" / "node-red" / "flow.json"
NODE_RED_VERSION = "4"


@pytest.fixture(scope="session")
def node_red_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        if in_ci():
            pytest.fail("npm/node are missing: CI must provide them for the Node-RED test")
        pytest.skip("npm is not installed")
    folder = tmp_path_factory.mktemp("node-red")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
                    f"node-red@{NODE_RED_VERSION}"], cwd=folder, check=True, timeout=600,
                   capture_output=True)
    return folder


class Comms:
    """Just enough of a websocket client to read Node-RED's debug messages."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /comms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           ).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self._send(json.dumps({"subscribe": "debug"}))

    def _send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(data)]) if len(data) < 126 else (
            bytes([0x81, 0x80 | 126]) + struct.pack("!H", len(data)))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("comms closed")
            data += chunk
        return data

    def debug_messages(self, until: float) -> list[dict[str, Any]]:
        """Debug messages received before the ``until`` monotonic time, or up to a first one."""
        found: list[dict[str, Any]] = []
        while time.monotonic() < until:
            self.sock.settimeout(max(0.05, until - time.monotonic()))
            try:
                first, second = self._exact(2)
            except TimeoutError:
                break
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._exact(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._exact(8))[0]
            payload = self._exact(size)
            if first & 0x0F != 1:
                continue  # ping / pong / close frames
            batch = json.loads(payload)
            for item in batch if isinstance(batch, list) else [batch]:
                if item.get("topic") == "debug":
                    found.append(item["data"])
            if found:
                break
        return found

    def close(self) -> None:
        self.sock.close()


async def test_example_flow_in_real_node_red(node_red_install: Path, runner: BridgeRunner,
                                             tmp_path: Path) -> None:
    config = runner.config(mqtt={"host": "127.0.0.1", "port": runner.broker.port,
                                 "base_topic": "orangetv", "client_id": "bridge-node-red"})
    await runner.start(config)
    flow = json.loads(FLOW.read_text())
    for node in flow:
        if node["type"] == "mqtt-broker":
            node["port"] = str(runner.broker.port)  # what a user edits in the broker node
    flow_file = tmp_path / "flows.json"
    flow_file.write_text(json.dumps(flow))
    port = free_port()
    process = subprocess.Popen(
        ["node", str(node_red_install / "node_modules" / "node-red" / "red.js"),
         "--port", str(port), "--userDir", str(tmp_path / "nr-user"), str(flow_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    comms = None
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if "Connected to broker" in line:
                break
            assert time.monotonic() < deadline, "Node-RED did not connect to the broker"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as admin:
            flows = (await admin.get("/flows")).json()
            assert any(n.get("id") == "otv_inject_zap" for n in flows)
            comms = Comms(port)
            seen: list[dict[str, Any]] = []

            async def press(node_id: str, wanted: Any) -> dict[str, Any]:
                response = await admin.post(f"/inject/{node_id}")
                assert response.status_code == 200, response.text
                until = time.monotonic() + 15
                while time.monotonic() < until:
                    # read in a thread: the bridge under test runs on this event loop
                    seen.extend(await asyncio.to_thread(comms.debug_messages, until))
                    for item in seen:
                        if wanted(item):
                            return item
                raise AssertionError(f"no debug message for {node_id}; saw {seen}")

            result = await press("otv_inject_zap", lambda d: d.get("name") == "result"
                                 and '"nr-zap"' in d["msg"])
            assert json.loads(result["msg"])["ok"] is True
            reply = await press("otv_inject_rr", lambda d: d.get("name") == "reply")
            assert json.loads(reply["msg"])["id"] == "nr-rr"
            await press("otv_inject_key", lambda d: d.get("name") == "result"
                        and '"action":"key"' in d["msg"].replace(" ", ""))
            await press("otv_inject_launch", lambda d: d.get("name") == "result"
                        and '"action":"launch"' in d["msg"].replace(" ", ""))
            await press("otv_inject_power", lambda d: d.get("name") == "result"
                        and "decodeur_orange_2" in d["msg"])
    finally:
        if comms is not None:
            comms.close()
        process.terminate()
        process.wait(10)
    done = [(r["path"], r["body"]) for r in runner.simulator.requests() if r["executed"]]
    assert done == [
        ("/devices/stb-0001/zap", {"epgId": "192"}),
        ("/devices/stb-0001/zap", {"epgId": "4"}),
        ("/devices/stb-0001/keys", {"key": "VOL_UP", "mode": "SHORT"}),
        ("/devices/stb-0001/applications/launch", {"applicationId": "NETFLIX"}),
        ("/devices/stb-0002/power-on", None),
    ]
