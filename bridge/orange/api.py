"""OrangeApi: the decoder API of SPEC section 1 over one keep-alive httpx client.

Every call goes through the same path: TTL check -> client-side rate limit -> access token ->
one HTTP request -> (401: one single-flight refresh and one replay) -> errors mapped by
:mod:`bridge.orange.errors` -> retried by :mod:`bridge.retry` when transient.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bridge.config import OrangeConfig
from bridge.errors import ApiError, AuthError, ExpiredError, PermanentApiError, TransientApiError
from bridge.models import POWER_STATES, Command, DeviceStatus
from bridge.orange import paths
from bridge.orange.auth import TokenManager
from bridge.orange.errors import api_error
from bridge.ratelimit import TokenBucket
from bridge.retry import RetryPolicy

_LOGGER = logging.getLogger(__name__)

# A few connections are enough: commands to one decoder are sequential and the bucket caps
# the rate; a large pool only costs httpcore bookkeeping (DESIGN.md, "Concurrency").
POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class ApiDevice:
    device_id: str
    name: str
    model: str
    last_seen: str | None


@dataclass(slots=True)
class Attempts:
    """Counts the HTTP requests sent for one command (a 401 and its replay are 2)."""

    count: int = 0


@dataclass(frozen=True, slots=True)
class ApiCall:
    method: str
    path: str
    body: dict[str, Any] | None = None


def calls_for(device_id: str, command: Command) -> list[ApiCall]:
    """The HTTP requests that carry out a (non-sequence) command."""
    match command.action:
        case "zap":
            return [ApiCall("POST", paths.device_path(paths.ZAP, device_id),
                            {"epgId": command.epg_id})]
        case "launch":
            return [ApiCall("POST", paths.device_path(paths.LAUNCH, device_id),
                            {"applicationId": command.app_id})]
        case "power":
            template = paths.POWER_ON if command.power == "on" else paths.STANDBY
            return [ApiCall("POST", paths.device_path(template, device_id))]
        case "key":
            call = ApiCall("POST", paths.device_path(paths.KEYS, device_id),
                           {"key": command.key, "mode": command.mode})
            return [call] * command.repeat
    raise ValueError(f"no API call for action {command.action!r}")


def new_http_client(config: OrangeConfig) -> httpx.AsyncClient:
    # Loading the CA store costs ~5 MB of native memory: only pay for it when a URL uses TLS
    # (the real Orange API always does; a local gateway or the simulator may not).
    tls = any(url.startswith("https://") for url in (config.api_url, config.auth_url))
    return httpx.AsyncClient(
        verify=tls,
        timeout=httpx.Timeout(config.timeout),
        limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        headers={"Accept": "application/json", "User-Agent": "orangetv2mqtt"},
    )


class OrangeApi:
    """The decoder API. Owns no policy but retry, rate limit and error mapping."""

    def __init__(
        self,
        config: OrangeConfig,
        client: httpx.AsyncClient,
        tokens: TokenManager,
        limiter: TokenBucket | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.tokens = tokens
        self.limiter = limiter or TokenBucket(config.rate_limit.per_minute,
                                              config.rate_limit.burst)

    async def fetch_devices(self, deadline: float | None = None) -> list[ApiDevice]:
        try:
            response = await self._call(ApiCall("GET", paths.DEVICES), None, deadline, Attempts())
        except PermanentApiError as exc:
            if exc.status == 404:
                raise PermanentApiError(
                    f"GET {paths.DEVICES} answered 404: check orange.api_url "
                    f"({self.config.api_url})", code="api_unavailable", status=404,
                    request_id=exc.request_id) from exc
            raise
        body = _json_body(response)
        raw = body.get("devices") if isinstance(body, dict) else None
        if not isinstance(raw, list):
            raise _shape_error(response, 'a {"devices": [...]} object')
        devices = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("deviceId"), str):
                _LOGGER.warning("discovery: skipped an entry without a deviceId")
                continue
            name = entry.get("name")
            model = entry.get("model")
            seen = entry.get("lastSeen")
            devices.append(ApiDevice(
                device_id=entry["deviceId"],
                name=name if isinstance(name, str) and name.strip() else entry["deviceId"],
                model=model if isinstance(model, str) else "TV5",
                last_seen=seen if isinstance(seen, str) else None,
            ))
        return devices

    async def fetch_status(self, device_id: str, deadline: float | None = None
                           ) -> DeviceStatus | None:
        """The decoder's status, or None when the API does not offer the call (404/501)."""
        call = ApiCall("GET", paths.device_path(paths.STATUS, device_id))
        try:
            response = await self._call(call, device_id, deadline, Attempts())
        except ApiError as exc:
            if exc.status == 501 or (exc.status == 404 and exc.orange_code != 60):
                return None
            raise
        body = _json_body(response)
        if not isinstance(body, dict) or "powerState" not in body:
            raise _shape_error(response, "a status object with powerState")
        epg = body.get("epgId")
        app = body.get("applicationId")
        return DeviceStatus(
            power=POWER_STATES.get(str(body.get("powerState"))),
            epg_id=str(epg) if isinstance(epg, str | int) and not isinstance(epg, bool) else None,
            app_id=app if isinstance(app, str) else None,
        )

    async def send(self, device_id: str, command: Command, deadline: float | None,
                   attempts: Attempts) -> None:
        """Carry out one command (zap, key, launch, power) on one decoder."""
        for call in calls_for(device_id, command):
            await self._call(call, device_id, deadline, attempts)

    # -- the one request path ------------------------------------------------------------

    async def _call(self, call: ApiCall, device_id: str | None, deadline: float | None,
                    attempts: Attempts) -> httpx.Response:
        policy = RetryPolicy(self.config.retry, deadline)
        try:
            async for attempt in policy.retrying():
                with attempt:
                    return await self._attempt(call, device_id, deadline, attempts)
        except TransientApiError as exc:
            if policy.stopped_by_deadline:
                raise ExpiredError(
                    f"TTL reached before the next attempt could start; last error: {exc.message}"
                ) from exc
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _attempt(self, call: ApiCall, device_id: str | None, deadline: float | None,
                       attempts: Attempts) -> httpx.Response:
        if deadline is not None and time.monotonic() > deadline:
            raise ExpiredError("TTL reached before the attempt could start")
        await self.limiter.acquire(deadline)
        token = await self.tokens.access_token()
        response = await self._request(call, token, device_id, attempts)
        if response.status_code == 401:
            token = await self.tokens.refresh_after_401(token)
            await self.limiter.acquire(None)  # the replay is part of an attempt already started
            response = await self._request(call, token, device_id, attempts)
        if response.is_success:
            return response
        error = api_error(
            response.status_code,
            response.content,
            request_id=response.headers.get(paths.REQUEST_ID_HEADER),
            device_id=device_id,
            retry_after=response.headers.get("Retry-After"),
        )
        if response.status_code == 401:
            raise AuthError(f"the API refused a freshly refreshed token ({error.message})")
        # INFO: the caller logs the final outcome once, at warning level
        _LOGGER.info("%s %s -> %s", call.method, call.path, error.message)
        raise error

    async def _request(self, call: ApiCall, token: str, device_id: str | None,
                       attempts: Attempts) -> httpx.Response:
        attempts.count += 1
        try:
            return await self.client.request(
                call.method,
                self.config.api_url + call.path,
                json=call.body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            )
        except httpx.TimeoutException as exc:
            error: TransientApiError = TransientApiError(
                f"no answer from the Orange API within {self.config.timeout:g} s",
                code="timeout", device_id=device_id)
            _LOGGER.info("%s %s -> %s", call.method, call.path, error.message)
            raise error from exc
        except httpx.TransportError as exc:
            error = TransientApiError(
                f"cannot reach the Orange API ({type(exc).__name__})",
                code="api_unavailable", device_id=device_id)
            _LOGGER.info("%s %s -> %s", call.method, call.path, error.message)
            raise error from exc


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise _shape_error(response, "JSON") from None


def _shape_error(response: httpx.Response, expected: str) -> PermanentApiError:
    kind = response.headers.get("content-type", "no content type").split(";")[0]
    return PermanentApiError(
        f"the API answered HTTP {response.status_code} with {kind} instead of {expected}: "
        f"is orange.api_url right?",
        code="api_unavailable",
        status=response.status_code,
        request_id=response.headers.get(paths.REQUEST_ID_HEADER),
    )
