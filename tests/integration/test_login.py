"""`login` and the token lifecycle, against the simulator over real sockets (issue: OAuth)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import bridge.tokens
from bridge.errors import AuthError
from bridge.localbroker import free_port
from bridge.login import LoginError, code_from_redirect
from bridge.orange.auth import TokenStore
from bridge.simulator import Simulator
from tests.conftest import BridgeRunner
from tests.helpers import Probe, write_token_file

ROOT = Path(__file__).parents[2]
SECRET = "s3cret-client-value"


def config_file(tmp_path: Path, sim: Simulator, redirect: str) -> Path:
    sim.state.oauth.settings.client_secret = SECRET
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"orange": {
        "api_url": sim.url, "auth_url": sim.auth_url, "client_id": "demo",
        "client_secret": "${TEST_SECRET}", "redirect_uri": redirect,
        "token_file": "state/token.json"}}))
    return path


def start_login(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", "login", "-c", str(config), "--no-browser", *extra],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "TEST_SECRET": SECRET, "PYTHONUNBUFFERED": "1"})


def authorize_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    for _ in range(20):
        line = process.stdout.readline()
        found = re.search(r"(http://\S+/oauth/authorize\?\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError("no authorize URL printed")


def test_login_with_local_callback(simulator: Simulator, tmp_path: Path) -> None:
    port = free_port()
    config = config_file(tmp_path, simulator, f"http://127.0.0.1:{port}/callback")
    process = start_login(config)
    url = authorize_url(process)
    for param in ("response_type=code", "client_id=demo", "scope=tv_remote", "prompt=login",
                  "state="):
        assert param in url
    # the "browser": the simulator approves at once and redirects to our local listener
    for _ in range(50):
        try:
            page = httpx.get(url, follow_redirects=True, timeout=5)
            break
        except httpx.ConnectError:
            time.sleep(0.1)  # the listener is starting
    assert "Signed in" in page.text
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert "salon" not in stdout and "decodeur_orange (stb-0001" in stdout
    token = tmp_path / "state" / "token.json"
    assert token.stat().st_mode & 0o777 == 0o600
    saved = TokenStore(token).load()
    assert saved.scope == "tv_remote" and saved.refresh_token
    for secret in (SECRET, saved.access_token, saved.refresh_token):
        assert secret not in stdout + stderr


def paste_flow(sim: Simulator, tmp_path: Path, mangle: Any) -> subprocess.CompletedProcess[str]:
    config = config_file(tmp_path, sim, "https://example.invalid/cb")
    process = start_login(config, "--paste")
    url = authorize_url(process)
    redirected = httpx.get(url, follow_redirects=False).headers["location"]
    stdout, stderr = process.communicate(mangle(redirected) + "\n", timeout=20)
    return subprocess.CompletedProcess(process.args, process.returncode or 0, stdout, stderr)


def test_login_by_paste(simulator: Simulator, tmp_path: Path) -> None:
    done = paste_flow(simulator, tmp_path, lambda url: url)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "state" / "token.json").exists()


def test_state_mismatch_is_refused(simulator: Simulator, tmp_path: Path) -> None:
    done = paste_flow(simulator, tmp_path, lambda url: re.sub(r"state=[^&]+", "state=forged", url))
    assert done.returncode == 1
    assert "state" in done.stderr and "does not match" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "token.json").exists()


def test_url_without_code(simulator: Simulator, tmp_path: Path) -> None:
    done = paste_flow(simulator, tmp_path, lambda url: re.sub(r"code=[^&]+&?", "", url))
    assert done.returncode == 1 and "no code=" in done.stderr


def test_access_denied_shows_checklist(simulator: Simulator, tmp_path: Path) -> None:
    simulator.state.apply({"authorize_error": "access_denied"})
    done = paste_flow(simulator, tmp_path, lambda url: url)
    assert done.returncode == 1
    assert "access_denied" in done.stderr
    for item in ("redirect URL", "prompt=login", "scope=tv_remote", "MAIN e-mail"):
        assert item in done.stderr


def test_wrong_client_secret(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator, "https://example.invalid/cb")
    simulator.state.oauth.settings.client_secret = "another"
    process = start_login(config, "--paste")
    url = authorize_url(process)
    redirected = httpx.get(url, follow_redirects=False).headers["location"]
    _, stderr = process.communicate(redirected + "\n", timeout=20)
    assert process.returncode == 1  # a refused login (SPEC section 4)
    assert "invalid_client" in stderr and "client_secret" in stderr and SECRET not in stderr
    assert "Traceback" not in stderr


def test_undeclared_redirect_uri(simulator: Simulator, tmp_path: Path) -> None:
    simulator.state.apply({"redirect_uris": ["https://declared.example/cb"]})
    config = config_file(tmp_path, simulator, "https://example.invalid/cb")
    process = start_login(config, "--paste")
    page = httpx.get(authorize_url(process), follow_redirects=False)
    assert page.status_code == 400 and "not declared" in page.text  # what the browser shows
    _, stderr = process.communicate("https://example.invalid/cb?error=access_denied\n",
                                    timeout=20)
    assert process.returncode == 1 and "redirect URL" in stderr


def test_login_times_out(simulator: Simulator, tmp_path: Path) -> None:
    config = config_file(tmp_path, simulator, f"http://127.0.0.1:{free_port()}/callback")
    process = start_login(config, "--timeout", "1")
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 1 and "no login completed within 1 s" in stderr


def test_code_from_redirect_rules() -> None:
    assert code_from_redirect("http://x/cb?code=abc&state=s1", "s1", "http://x/cb") == "abc"
    assert code_from_redirect("?code=abc&state=s1", "s1", "r") == "abc"
    with pytest.raises(LoginError):
        code_from_redirect("http://x/cb?code=abc&state=s2", "s1", "r")
    with pytest.raises(LoginError):
        code_from_redirect("http://x/cb?error=server_error&state=s1", "s1", "r")


def test_loose_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token.json"
    token.write_text('{"access_token":"a","refresh_token":"r","expires_at":1}')
    token.chmod(0o644)
    with pytest.raises(AuthError) as info:
        TokenStore(token).load()
    assert "chmod 600" in info.value.message and "--insecure-token-file" in info.value.message
    assert TokenStore(token, insecure=True).load().access_token == "a"


def test_hand_written_token_without_expires_at(tmp_path: Path) -> None:
    token = tmp_path / "token.json"
    token.write_text('{"access_token":"a","refresh_token":"r"}')
    token.chmod(0o600)
    tokens = TokenStore(token).load()
    assert tokens.expires_at is None  # refreshed at first use to learn the expiry
    assert "a" not in repr(tokens).replace("expires_at", "").replace("scope", "")


async def test_daemon_lifecycle_and_no_secret_leaks(
        runner: BridgeRunner, probe: Probe, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Proactive refresh, a 503 on the token endpoint, revocation, then recovery by `login`."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(bridge.tokens, "TOKEN_FILE_RECHECK", 0.2)
    sim = runner.simulator
    sim.state.oauth.settings.client_secret = SECRET
    config = runner.config(orange__client_secret=SECRET)
    b = config.mqtt.base_topic
    probe.subscribe(f"{b}/#")
    # the file says 4 s are left, under the 5 min margin: the timer refreshes, no command needed
    write_token_file(sim, config.orange.token_file, lifetime=4)
    bridge_ = await runner.start(config, token=False)

    def grants() -> list[dict[str, Any]]:
        return [r for r in sim.requests() if r["path"] == "/oauth/token"]

    async with asyncio.timeout(15):  # refreshed by the timer, with no command sent
        while not grants():
            await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        while bridge_.tokens.refresh_due_in() in (None, 0.0):
            await asyncio.sleep(0.05)
    assert grants()[0]["status"] == 200 and bridge_.tokens.state == "ok"
    assert not [r for r in sim.requests() if r["status"] == 401]

    # the token endpoint down once (503) is not an auth failure: retried, tokens kept
    sim.state.apply({"expire_tokens": True, "token_queue": [{"status": 503}]})
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "W9", "id": "through503"})
    assert (await probe.result(f"{b}/salon/result", "through503"))["ok"] is True
    assert [r["status"] for r in grants()] == [200, 503, 200]
    assert bridge_.tokens.state == "ok"

    sim.state.apply({"expire_tokens": True, "revoke_refresh": True})
    probe.publish(f"{b}/salon/zap/set", "TF1")
    await probe.wait(f"{b}/bridge/info", lambda i: i["auth"] == "login_required", timeout=15)
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "TF1", "id": "locked"})
    locked = await probe.result(f"{b}/salon/result", "locked")
    assert locked["error"]["code"] == "auth_required"
    assert await probe.wait(f"{b}/bridge/state", lambda p: p == "online", raw=True)
    requests_when_locked = len(grants())
    await asyncio.sleep(1)
    assert len(grants()) == requests_when_locked  # no token request while login is required

    write_token_file(sim, config.orange.token_file)  # what `orangetv2mqtt login` does
    await probe.wait(f"{b}/bridge/info", lambda i: i["auth"] == "ok", timeout=10)
    probe.publish(f"{b}/salon/set", {"action": "zap", "channel": "M6", "id": "back"})
    assert (await probe.result(f"{b}/salon/result", "back"))["ok"] is True

    secrets = {SECRET} | set(sim.state.oauth.access)
    secrets |= set(sim.state.oauth.refresh)
    saved = TokenStore(config.orange.token_file).load()
    secrets |= {saved.access_token, saved.refresh_token or ""} - {""}
    logs = caplog.text
    traffic = b"".join(m.payload for m in probe.messages).decode(errors="replace")
    for secret in secrets:
        assert secret not in logs and secret not in traffic
