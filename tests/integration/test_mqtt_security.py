"""The broker link with a password and with TLS, on real mosquitto listeners."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bridge.simulator import Simulator
from tests.conftest import BridgeRunner
from tests.helpers import Broker, in_ci


def secured_broker(tmp_path: Path, listener: str) -> Broker:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed")
    broker = Broker(tmp_path, listener=listener)
    broker.start()
    return broker


async def test_username_password_and_refusal_backoff(
        simulator: Simulator, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passwords = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(passwords), "bridge", "s3cret"],
                   check=True, capture_output=True)
    passwords.chmod(0o644)
    broker = secured_broker(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n")
    run = BridgeRunner(simulator, broker, tmp_path)
    try:
        good = run.config(mqtt={"host": "127.0.0.1", "port": broker.port, "username": "bridge",
                                "password": "s3cret", "base_topic": "sec", "client_id": "b1"})
        await run.start(good)  # connected, discovered: the password was accepted
        caplog.set_level(logging.INFO)
        bad = run.config(mqtt={"host": "127.0.0.1", "port": broker.port, "username": "bridge",
                               "password": "wrong", "base_topic": "sec2", "client_id": "b2"})
        bridge = await run.start(bad, wait_devices=False)
        await asyncio.sleep(3)
        assert not bridge.link.connected.is_set()
        refusals = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(refusals) == 1  # a refused login is not retried at once: no hammering
        assert "wrong" not in caplog.text
    finally:
        await run.stop_all()
        broker.stop()


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")
    (folder / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.cnf", "-out", "server.crt")
    (folder / "server.key").chmod(0o644)
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


async def test_tls_broker(simulator: Simulator, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        if in_ci():
            pytest.fail("openssl is missing: CI must install it")
        pytest.skip("openssl is not installed")
    ca, cert, key = make_certificates(tmp_path)
    broker = secured_broker(tmp_path, f"allow_anonymous true\ncafile {ca}\ncertfile {cert}\n"
                                      f"keyfile {key}\n")
    run = BridgeRunner(simulator, broker, tmp_path)
    try:
        config = run.config(mqtt={"host": "127.0.0.1", "port": broker.port, "base_topic": "tls",
                                  "client_id": "tls-bridge",
                                  "tls": {"enabled": True, "ca_certs": str(ca)}})
        bridge = await run.start(config)
        assert bridge.link.connected.is_set()
        # the same listener gives a plain-TCP client no CONNACK: the bridge really spoke TLS
        plain = paho.Client(CallbackAPIVersion.VERSION2, client_id="plain")
        plain.connect("127.0.0.1", broker.port)
        plain.loop_start()
        await asyncio.sleep(1)
        assert not plain.is_connected()
        plain.loop_stop()
    finally:
        await run.stop_all()
        broker.stop()
