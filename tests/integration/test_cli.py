"""The command line as a user runs it: real processes, the simulator, a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bridge.localbroker import free_port, port_open
from bridge.simulator import Simulator
from tests.helpers import Broker, Probe, write_token_file

ROOT = Path(__file__).parents[2]


def cli(*args: str, timeout: float = 30, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bridge", *args], capture_output=True, check=False,
                          text=True, timeout=timeout, cwd=ROOT, input=stdin,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})


def write_config(path: Path, sim: Simulator, broker_port: int = 1883, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "base_topic": "clitest",
                 "client_id": f"cli-{os.getpid()}-{time.monotonic_ns()}"},
        "orange": {"api_url": sim.url, "auth_url": sim.auth_url, "client_id": "demo",
                   "client_secret": "demo-secret-value", "token_file": "token.json",
                   "retry": {"max_attempts": 2, "max_delay": 0.1}},
        "devices": {"stb-0001": {"name": "salon"}},
        "homeassistant": {"enabled": False},
        **extra,
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def sim_with_secret(simulator: Simulator) -> Simulator:
    simulator.state.oauth.settings.client_secret = "demo-secret-value"
    return simulator


def test_help_reads_well() -> None:
    out = cli("--help")
    assert out.returncode == 0
    for command in ("run", "login", "devices", "send", "check-config", "simulate", "demo"):
        assert command in out.stdout
    assert "Exit codes" in out.stdout


def test_check_config_masks_secrets(sim_with_secret: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sim_with_secret,
                          mqtt={"password": "broker-pass-123", "base_topic": "x"})
    out = cli("check-config", "-c", str(config))
    assert out.returncode == 0, out.stderr
    assert "demo-secret-value" not in out.stdout + out.stderr
    assert "broker-pass-123" not in out.stdout + out.stderr
    assert "client_secret: '***'" in out.stdout


def test_bad_config_exit_2_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mqtt:\n  port: abc\norange:\n  api_url: nope\n  client_id: a\n"
                   "  client_secret: b\n")
    out = cli("check-config", "-c", str(bad))
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "mqtt.port: expected an integer 1-65535, got 'abc'",
        "orange.api_url: expected an http:// or https:// URL, got 'nope'",
    ]
    assert "Traceback" not in out.stderr
    assert cli("check-config", "-c", str(tmp_path / "missing.yaml")).returncode == 2


def test_devices_and_send(sim_with_secret: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sim_with_secret)
    write_token_file(sim_with_secret, tmp_path / "token.json")
    table = cli("devices", "-c", str(config))
    assert table.returncode == 0, table.stderr
    assert "salon" in table.stdout and "decodeur_orange_2" in table.stdout
    listed = json.loads(cli("devices", "-c", str(config), "--json").stdout)
    assert [d["friendly_name"] for d in listed] == ["salon", "decodeur_orange_2"]

    sent = cli("send", "-c", str(config), "salon", "zap", "France 2")
    assert sent.returncode == 0, sent.stderr
    result = json.loads(sent.stdout)
    assert result["ok"] is True and result["device_id"] == "stb-0001" and result["attempts"] == 1
    assert sim_with_secret.state.household.decoders["stb-0001"].epg_id == "4"

    standby = cli("send", "-c", str(config), "decodeur_orange_2", "key", "ok")
    assert standby.returncode == 1
    assert json.loads(standby.stdout)["error"]["code"] == "device_standby"

    unknown = cli("send", "-c", str(config), "salon", "zap", "TF11")
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"]["code"] == "unknown_channel"

    as_json = cli("send", "-c", str(config), "stb-0001", '{"action":"launch","app":"netflix"}')
    assert json.loads(as_json.stdout)["ok"] is True


def test_no_token_exit_3(sim_with_secret: Simulator, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sim_with_secret)
    out = cli("devices", "-c", str(config))
    assert out.returncode == 3
    assert "orangetv2mqtt login" in out.stderr and "Traceback" not in out.stderr
    (tmp_path / "token.json").write_text("{not json")
    (tmp_path / "token.json").chmod(0o600)
    corrupt = cli("send", "-c", str(config), "salon", "zap", "TF1")
    assert corrupt.returncode == 3 and "not valid JSON" in corrupt.stderr


def test_simulate_command_serves_and_writes_token(tmp_path: Path) -> None:
    port = free_port()
    token = tmp_path / "sim-token.json"
    process = subprocess.Popen([sys.executable, "-m", "bridge", "simulate", "--port", str(port),
                                "--token-file", str(token), "--fail-next", "503",
                                "--fail-next", "429:0.1"], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 10
        while not (port_open(port) and token.exists()):
            assert time.monotonic() < deadline, "simulate did not start"
            time.sleep(0.05)
        assert token.stat().st_mode & 0o777 == 0o600
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump({"orange": {
            "api_url": f"http://127.0.0.1:{port}", "auth_url": f"http://127.0.0.1:{port}/oauth",
            "client_id": "demo", "client_secret": "demo", "token_file": str(token)}}))
        out = cli("devices", "-c", str(config), "--json")  # through the two injected faults
        assert out.returncode == 0, out.stderr
        assert len(json.loads(out.stdout)) == 2
        log = httpx.get(f"http://127.0.0.1:{port}/_sim/requests").json()
        assert [r["status"] for r in log] == [503, 429, 200]
    finally:
        process.send_signal(signal.SIGINT)
        stdout, _ = process.communicate(timeout=10)
    assert "client_id: demo" in stdout and f"http://127.0.0.1:{port}/oauth" in stdout


async def test_run_and_sigterm(sim_with_secret: Simulator, broker: Broker, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", sim_with_secret, broker.port)
    write_token_file(sim_with_secret, tmp_path / "token.json")
    probe = Probe(broker.port)
    probe.subscribe("clitest/#")
    process = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                               cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        assert await probe.wait("clitest/bridge/state", lambda p: p == "online", raw=True)
        assert await probe.wait("clitest/salon/availability", lambda p: p == "online", raw=True)
        sim_with_secret.state.apply({"latency_ms": 1500})
        probe.publish("clitest/salon/set", {"action": "zap", "channel": "M6", "id": "inflight"})
        await probe.wait("clitest/bridge/info")
        time.sleep(0.5)  # the zap is now in flight (the simulator answers after 1.5 s)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        stderr = process.stderr.read() if process.stderr else ""
        result = await probe.result("clitest/salon/result", "inflight")
        assert result["ok"] is True  # the in-flight call was allowed to finish
        assert await probe.wait("clitest/bridge/state", lambda p: p == "offline", raw=True)
        assert await probe.wait("clitest/salon/availability", lambda p: p == "offline",
                                raw=True), stderr
        assert "demo-secret-value" not in stderr
    finally:
        if process.poll() is None:
            process.kill()
        probe.stop()
