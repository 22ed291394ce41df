"""OrangeApi against our simulator over real sockets: every row of SPEC section 1's table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bridge.catalog import Catalog
from bridge.commands import CommandParser
from bridge.config import Config
from bridge.errors import (
    AuthError,
    ExpiredError,
    PermanentApiError,
    TransientApiError,
    TransientAuthError,
)
from bridge.models import Command
from bridge.orange.api import Attempts, OrangeApi, new_http_client
from bridge.orange.auth import TokenManager, TokenStore
from bridge.simulator import Simulator
from tests.helpers import bridge_config, write_token_file

PARSER = CommandParser(Catalog())


def cmd(payload: str, action: str | None = None) -> Command:
    return PARSER.parse(payload.encode(), action)


class Client:
    def __init__(self, sim: Simulator, config: Config) -> None:
        self.sim = sim
        self.config = config
        self.http = new_http_client(config.orange)
        self.tokens = TokenManager(config.orange, self.http, TokenStore(config.orange.token_file))
        self.api = OrangeApi(config.orange, self.http, self.tokens)

    def api_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.sim.requests() if not r["path"].startswith("/oauth/")]

    def token_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.sim.requests() if r["path"] == "/oauth/token"]


@pytest.fixture
async def client(simulator: Simulator, tmp_path: Path) -> AsyncIterator[Client]:
    config = bridge_config(simulator, 1883, tmp_path)
    write_token_file(simulator, config.orange.token_file)
    c = Client(simulator, config)
    yield c
    await c.http.aclose()


async def test_discovery_and_status(client: Client) -> None:
    devices = await client.api.fetch_devices()
    assert [(d.device_id, d.name) for d in devices] == [
        ("stb-0001", "Decodeur Orange"), ("stb-0002", "Decodeur Orange 2")]
    status = await client.api.fetch_status("stb-0001")
    assert status is not None and (status.power, status.epg_id) == ("on", "192")
    standby = await client.api.fetch_status("stb-0002")
    assert standby is not None and (standby.power, standby.epg_id) == ("standby", None)


@pytest.mark.parametrize(("payload", "action", "path", "body"), [
    ("France 2", "zap", "/devices/stb-0001/zap", {"epgId": "4"}),
    ("netflix", "launch", "/devices/stb-0001/applications/launch", {"applicationId": "NETFLIX"}),
    ("vol+", "key", "/devices/stb-0001/keys", {"key": "VOL_UP", "mode": "SHORT"}),
    ("on", "power", "/devices/stb-0001/power-on", None),
    ("off", "power", "/devices/stb-0001/standby", None),
])
async def test_every_command_reaches_the_api(client: Client, payload: str, action: str,
                                             path: str, body: Any) -> None:
    attempts = Attempts()
    await client.api.send("stb-0001", cmd(payload, action), None, attempts)
    last = client.api_requests()[-1]
    assert (last["method"], last["path"], last["body"], last["status"]) == (
        "POST", path, body, 204)
    assert attempts.count == 1


async def test_key_repeat_and_long_mode(client: Client) -> None:
    attempts = Attempts()
    await client.api.send("stb-0001", cmd('{"action":"key","key":"ch+","mode":"long","repeat":3}'),
                          None, attempts)
    sent = [r["body"] for r in client.api_requests()]
    assert sent == [{"key": "CH_UP", "mode": "LONG"}] * 3 and attempts.count == 3


async def test_power_on_wakes_standby_decoder(client: Client) -> None:
    await client.api.send("stb-0002", cmd("on", "power"), None, Attempts())
    await client.api.send("stb-0002", cmd("TF1", "zap"), None, Attempts())
    status = await client.api.fetch_status("stb-0002")
    assert status is not None and (status.power, status.epg_id) == ("on", "192")


@pytest.mark.parametrize(("device", "command", "power", "code"), [
    ("stb-0002", ("TF1", "zap"), None, "device_standby"),
    ("stb-0001", ("TF1", "zap"), "DEEP_SLEEP", "device_unreachable"),
    ("stb-0001", ("on", "power"), "UNREACHABLE", "device_unreachable"),
    ("stb-9999", ("TF1", "zap"), None, "device_not_found"),
    ("stb-0001", ('{"action":"launch","app_id":"NOPE"}', None), None, "bad_request"),
])
async def test_permanent_errors_are_not_retried(client: Client, device: str,
                                                command: tuple[str, str | None],
                                                power: str | None, code: str) -> None:
    if power:
        client.sim.state.apply({"power": {device: power}})
    attempts = Attempts()
    with pytest.raises(PermanentApiError) as info:
        await client.api.send(device, cmd(*command), None, attempts)
    assert info.value.code == code
    assert info.value.request_id and info.value.request_id.startswith("sim-")
    assert attempts.count == 1 and len(client.api_requests()) == 1


async def test_403_and_406_rows(client: Client) -> None:
    client.sim.state.apply({"queue": [{"status": 403}]})
    with pytest.raises(PermanentApiError) as info:
        await client.api.send("stb-0001", cmd("TF1", "zap"), None, Attempts())
    assert info.value.code == "forbidden"
    # the bridge always sends Accept; without it the simulator answers 406 like Orange
    response = await client.http.get(client.sim.url + "/devices",
                                     headers={"Accept": "text/html"})
    assert response.status_code == 406 and response.json()["code"] == 25


async def test_503_then_success(client: Client) -> None:
    client.sim.state.apply({"queue": [{"status": 503}, {"status": 502}]})
    attempts = Attempts()
    await client.api.send("stb-0001", cmd("M6", "zap"), None, attempts)
    statuses = [r["status"] for r in client.api_requests()]
    assert statuses == [503, 502, 204] and attempts.count == 3


async def test_gives_up_after_max_attempts(client: Client) -> None:
    client.sim.state.apply({"queue": [{"status": 503}] * 10})
    with pytest.raises(TransientApiError) as info:
        await client.api.send("stb-0001", cmd("M6", "zap"), None, Attempts())
    assert info.value.code == "api_unavailable"
    assert len(client.api_requests()) == 4  # orange.retry.max_attempts, the first included


async def test_429_retry_after_is_honoured(client: Client) -> None:
    client.sim.state.apply({"queue": [{"status": 429, "retry_after": 1}]})
    started = time.monotonic()
    await client.api.send("stb-0001", cmd("M6", "zap"), None, Attempts())
    waited = time.monotonic() - started
    assert waited >= 0.95  # max_delay is 0.2 s in tests: only Retry-After explains this wait
    assert [r["status"] for r in client.api_requests()] == [429, 204]


async def test_retry_after_past_ttl_expires_without_sending(client: Client) -> None:
    client.sim.state.apply({"queue": [{"status": 429, "retry_after": 30}]})
    deadline = time.monotonic() + 2
    with pytest.raises(ExpiredError) as info:
        await client.api.send("stb-0001", cmd("M6", "zap"), deadline, Attempts())
    assert "rate" in info.value.message.lower() or "requests" in info.value.message
    assert [r["status"] for r in client.api_requests()] == [429]


async def test_hang_and_drop_are_retried(client: Client) -> None:
    client.sim.state.apply({"queue": [{"hang": 3}, {"drop": True}]})
    attempts = Attempts()
    await client.api.send("stb-0001", cmd("M6", "zap"), None, attempts)
    assert [r["fault"] for r in client.api_requests()] == ["hang", "drop", None]
    assert attempts.count == 3


async def test_expired_token_refreshes_once_and_replays(client: Client) -> None:
    await client.api.fetch_devices()
    client.sim.state.apply({"expire_tokens": True})
    attempts = Attempts()
    await client.api.send("stb-0001", cmd("M6", "zap"), None, attempts)
    assert attempts.count == 2  # the 401 and its replay
    assert [r["grant_type"] for r in client.token_requests()] == ["refresh_token"]
    saved = TokenStore(client.config.orange.token_file).load()
    assert saved.access_token == client.tokens._tokens.access_token  # type: ignore[union-attr]


async def test_single_flight_refresh_under_ten_concurrent_401s(client: Client) -> None:
    await client.api.fetch_devices()
    client.sim.state.apply({"expire_tokens": True})
    await asyncio.gather(*(client.api.send("stb-0001", cmd("vol+", "key"), None, Attempts())
                           for _ in range(10)))
    assert len(client.token_requests()) == 1
    assert sum(1 for r in client.api_requests() if r["status"] == 204) == 10


async def test_revoked_refresh_token_means_login_required(client: Client) -> None:
    await client.api.fetch_devices()
    client.sim.state.apply({"expire_tokens": True, "revoke_refresh": True})
    with pytest.raises(AuthError) as info:
        await client.api.send("stb-0001", cmd("M6", "zap"), None, Attempts())
    assert info.value.code == "auth_required"
    assert client.tokens.state == "login_required"
    with pytest.raises(AuthError):  # no new token request until the token file changes
        await client.api.send("stb-0001", cmd("M6", "zap"), None, Attempts())
    assert len(client.token_requests()) == 1


async def test_proactive_refresh_and_rotation(client: Client, tmp_path: Path) -> None:
    write_token_file(client.sim, client.config.orange.token_file, lifetime=60)  # < 5 min left
    before = TokenStore(client.config.orange.token_file).load()
    await client.api.fetch_devices()
    after = TokenStore(client.config.orange.token_file).load()
    assert after.refresh_token != before.refresh_token  # rotated and stored at once
    assert [r["grant_type"] for r in client.token_requests()] == ["refresh_token"]
    assert all(r["status"] == 200 for r in client.api_requests())  # no 401 was needed


async def test_no_rotation_keeps_old_refresh_token(client: Client) -> None:
    client.sim.state.apply({"rotate_refresh": False, "expires_in_as_string": True})
    write_token_file(client.sim, client.config.orange.token_file, lifetime=60)
    before = TokenStore(client.config.orange.token_file).load()
    await client.api.fetch_devices()
    after = TokenStore(client.config.orange.token_file).load()
    assert after.refresh_token == before.refresh_token
    assert after.access_token != before.access_token
    assert after.expires_at is not None and after.expires_at > time.time() + 3000


async def test_rate_limit_holds_under_a_burst(simulator: Simulator, tmp_path: Path) -> None:
    config = bridge_config(simulator, 1883, tmp_path,
                           orange__rate_limit={"per_minute": 600, "burst": 5})
    write_token_file(simulator, config.orange.token_file)
    c = Client(simulator, config)
    try:
        started = time.monotonic()
        await asyncio.gather(*(c.api.send("stb-0001", cmd("vol+", "key"), None, Attempts())
                               for _ in range(15)))
        elapsed = time.monotonic() - started
    finally:
        await c.http.aclose()
    # 5 at once, then one every 0.1 s: the last of 15 cannot go before ~1 s
    assert elapsed >= 0.9
    assert len(c.api_requests()) == 15


async def test_html_answer_is_a_clear_error(simulator: Simulator, tmp_path: Path) -> None:
    config = bridge_config(simulator, 1883, tmp_path)
    write_token_file(simulator, config.orange.token_file)
    wrong = config.orange.__class__(**{**{f: getattr(config.orange, f) for f in
                                          config.orange.__dataclass_fields__},
                                       "api_url": simulator.url + "/oauth"})
    http = new_http_client(wrong)
    api = OrangeApi(wrong, http, TokenManager(wrong, http, TokenStore(wrong.token_file)))
    try:
        with pytest.raises(PermanentApiError) as info:
            await api.fetch_devices()
    finally:
        await http.aclose()
    assert "check orange.api_url" in info.value.message


async def test_missing_token_file_is_login_required(simulator: Simulator, tmp_path: Path) -> None:
    config = bridge_config(simulator, 1883, tmp_path)
    c = Client(simulator, config)
    try:
        with pytest.raises(AuthError) as info:
            await c.api.fetch_devices()
    finally:
        await c.http.aclose()
    assert "no token file" in info.value.message and "orangetv2mqtt login" in info.value.message


async def test_never_more_than_a_handful_of_token_requests(client: Client) -> None:
    outcomes = []
    for _ in range(7):  # a pathological API that expires every token at once
        client.sim.state.apply({"expire_tokens": True})
        try:
            await client.api.send("stb-0001", cmd("M6", "zap"), None, Attempts())
            outcomes.append("ok")
        except TransientAuthError as exc:
            outcomes.append(exc.message)
    assert len(client.token_requests()) == 5  # MAX_TOKEN_REQUESTS_PER_MINUTE
    assert outcomes[:5] == ["ok"] * 5
    assert all("held back" in o for o in outcomes[5:])
    assert client.tokens.state == "ok"  # throttled is not logged out
