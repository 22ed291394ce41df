"""The systemd unit (checked by systemd-analyze) and sd_notify, read from a real socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bridge.simulator import Simulator
from tests.helpers import Broker, in_ci, write_token_file

ROOT = Path(__file__).parents[2]
UNIT = ROOT / "systemd" / "orangetv2mqtt.service"


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if in_ci():
            pytest.fail("systemd-analyze is missing: CI must install systemd")
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    # verify checks that ExecStart's binary exists: point it at this checkout's script
    binary = Path(sys.executable).with_name("orangetv2mqtt")
    unit = tmp_path / "orangetv2mqtt.service"
    unit.write_text(text.replace("/usr/local/bin/orangetv2mqtt", str(binary)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    for directive in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StartLimitBurst=",
                      "StateDirectory=orangetv2mqtt", "ConfigurationDirectory=orangetv2mqtt",
                      "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                      "NoNewPrivileges=yes",
                      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                      "SystemCallFilter=@system-service", "CapabilityBoundingSet=\n"):
        assert directive in text
    broken = tmp_path / "broken.service"
    broken.write_text(unit.read_text().replace("Type=notify", "Type=nonsense"))
    bad = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True,
                         text=True, check=False, timeout=60)
    assert "nonsense" in bad.stderr  # the check above can fail


def test_sd_notify_ready_watchdog_stopping(simulator: Simulator, broker: Broker,
                                           tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "mqtt": {"port": broker.port, "base_topic": "sdtest", "client_id": "sd-notify-test"},
        "orange": {"api_url": simulator.url, "auth_url": simulator.auth_url,
                   "client_id": "demo", "client_secret": "demo", "token_file": "token.json"},
        "homeassistant": {"enabled": False}}))
    write_token_file(simulator, tmp_path / "token.json")
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(10)
        env = {**os.environ, "NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000"}
        process = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                                   cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
        try:
            received: list[str] = []
            deadline = time.monotonic() + 10
            while sum(m == "WATCHDOG=1" for m in received) < 3:
                assert time.monotonic() < deadline, received
                received.append(server.recv(4096).decode())
            assert received[0].startswith("READY=1\nSTATUS=serving on")
            process.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in received[-1]:
                received.append(server.recv(4096).decode())
            assert process.wait(10) == 0
        finally:
            if process.poll() is None:
                process.kill()
