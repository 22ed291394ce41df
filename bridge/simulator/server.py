"""The simulator's HTTP server: the API model over real sockets, a request log, fault switches.

Control endpoints (not part of Orange's API) live under ``/_sim/``:

- ``GET /_sim/requests`` the request log; ``DELETE /_sim/requests`` clears it
- ``GET /_sim/state`` decoders and switches; ``POST /_sim/faults`` changes switches (JSON):
  ``{"queue": [{"status": 503}, {"status": 429, "retry_after": 1}, {"hang": 5}, {"drop": true}],
  "random": {"p503": 0.15, "p429": 0.05, "p_hang": 0.0, "p_drop": 0.0, "seed": 1},
  "token_queue": [{"status": 503}], "expire_tokens": true, "revoke_refresh": true,
  "token_lifetime": 60, "rotate_refresh": false, "status_offered": false, "latency_ms": 0,
  "authorize_error": "access_denied", "power": {"stb-0002": "DEEP_SLEEP"},
  "remove_devices": ["stb-0002"], "add_devices": [{"deviceId": "stb-0009", "name": "Chambre"}]}``
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bridge.models import iso_now
from bridge.orange.auth import TokenStore, tokens_from_json
from bridge.simulator.model import (
    POWER_VALUES,
    Decoder,
    Household,
    SimResponse,
    demo_decoders,
    gateway_error,
)
from bridge.simulator.oauth import OAuthServer, OAuthSettings

REQUEST_LOG_SIZE = 200_000
REQUEST_ID_HEADER = "X-OAPI-Request-Id"


@dataclass(slots=True)
class SimulatorSettings:
    host: str = "127.0.0.1"
    port: int = 8900
    decoders: int = 2
    status_offered: bool = True
    latency_ms: float = 0.0
    quiet: bool = True
    oauth: OAuthSettings = field(default_factory=OAuthSettings)
    faults: list[dict[str, Any]] = field(default_factory=list)  # the initial fault queue


@dataclass(slots=True)
class _RandomFaults:
    p503: float = 0.0
    p429: float = 0.0
    p_hang: float = 0.0
    p_drop: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def pick(self) -> dict[str, Any] | None:
        roll = self.rng.random()
        for chance, fault in (
            (self.p503, {"status": 503}),
            (self.p429, {"status": 429, "retry_after": self.retry_after}),
            (self.p_hang, {"hang": self.hang_seconds}),
            (self.p_drop, {"drop": True}),
        ):
            if roll < chance:
                return fault
            roll -= chance
        return None


class SimulatorState:
    """Everything the handler threads share, behind one lock."""

    def __init__(self, settings: SimulatorSettings) -> None:
        self.lock = threading.Lock()
        self.settings = settings
        self.household = Household(demo_decoders(settings.decoders),
                                   status_offered=settings.status_offered)
        self.oauth = OAuthServer(settings.oauth)
        self.log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self.queue: deque[dict[str, Any]] = deque(settings.faults)
        self.token_queue: deque[dict[str, Any]] = deque()
        self.random = _RandomFaults()
        self.latency = settings.latency_ms / 1000.0
        self._counter = 0

    def request_id(self) -> str:
        with self.lock:
            self._counter += 1
            return f"sim-{self._counter:08d}"

    def next_fault(self, token_endpoint: bool) -> dict[str, Any] | None:
        with self.lock:
            queue = self.token_queue if token_endpoint else self.queue
            if queue:
                return queue.popleft()
            return None if token_endpoint else self.random.pick()

    def apply(self, change: dict[str, Any]) -> None:
        """Apply a ``POST /_sim/faults`` body (see the module docstring)."""
        with self.lock:
            self.queue.extend(change.get("queue", []))
            self.token_queue.extend(change.get("token_queue", []))
            if "random" in change:
                spec = dict(change["random"])
                seed = spec.pop("seed", None)
                self.random = _RandomFaults(**spec, rng=random.Random(seed))
            oauth = self.oauth.settings
            if change.get("expire_tokens"):
                self.oauth.expire_access_tokens()
            if change.get("revoke_refresh"):
                self.oauth.revoke_refresh_tokens()
            for key in ("token_lifetime", "rotate_refresh", "expires_in_as_string",
                        "authorize_error"):
                if key in change:
                    setattr(oauth, key, change[key])
            if "redirect_uris" in change:
                oauth.redirect_uris = tuple(change["redirect_uris"])
            if "status_offered" in change:
                self.household.status_offered = bool(change["status_offered"])
            if "latency_ms" in change:
                self.latency = float(change["latency_ms"]) / 1000.0
            for device_id, power in change.get("power", {}).items():
                if power not in POWER_VALUES:
                    raise ValueError(f"power must be one of {POWER_VALUES}")
                self.household.decoders[device_id].power = power
            for device_id in change.get("remove_devices", []):
                self.household.decoders.pop(device_id, None)
            for entry in change.get("add_devices", []):
                decoder = Decoder(entry["deviceId"], entry.get("name", entry["deviceId"]),
                                  entry.get("power", "ON"))
                self.household.decoders[decoder.device_id] = decoder

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "decoders": [{**d.status(), "name": d.name}
                             for d in self.household.decoders.values()],
                "queue": list(self.queue),
                "token_queue": list(self.token_queue),
                "status_offered": self.household.status_offered,
                "token_lifetime": self.oauth.settings.token_lifetime,
                "rotate_refresh": self.oauth.settings.rotate_refresh,
                "requests": len(self.log),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.state.settings.quiet:
            super().log_message(format, *args)

    def handle(self) -> None:
        # the client may go away (its timeout, test teardown): nothing is left to answer
        with contextlib.suppress(ConnectionError, TimeoutError):
            super().handle()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if url.path.startswith("/_sim/"):
            self._send(self._control(url.path, body))
            return
        token_endpoint = url.path.startswith("/oauth/")
        fault = state.next_fault(token_endpoint) if url.path != "/oauth/authorize" else None
        if fault is not None and self._fault(fault, url.path, body):
            return
        if state.latency:
            time.sleep(state.latency)
        if token_endpoint:
            response = self._oauth(url.path, url.query, body)
        else:
            response = self._api(url.path, body)
        self._record(url.path, body, response)
        self._send(response)

    def _api(self, path: str, body: bytes) -> SimResponse:
        state = self.server.state
        accept = self.headers.get("Accept", "")
        if "application/json" not in accept:
            return gateway_error(406, 25, "Not acceptable", "Accept: application/json is required")
        with state.lock:
            problem = state.oauth.check_bearer(self.headers.get("Authorization"))
            if problem is not None:
                return gateway_error(401, problem[0], problem[1],
                                     "The requested service needs valid credentials")
            return state.household.handle(self.command, path, body)

    def _oauth(self, path: str, query: str, body: bytes) -> SimResponse:
        state = self.server.state
        with state.lock:
            if path == "/oauth/authorize" and self.command == "GET":
                return state.oauth.authorize(query)
            if path == "/oauth/token" and self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
                return state.oauth.token(self.headers.get("Authorization"), form)
        return gateway_error(404, 0, "Resource not found", f"No resource at {path}")

    def _fault(self, fault: dict[str, Any], path: str, body: bytes) -> bool:
        """Play an injected fault; True when it replaced the answer."""
        if fault.get("hang"):
            self._record(path, body, SimResponse(0), fault="hang")
            time.sleep(float(fault["hang"]))
            self.close_connection = True
            return True
        if fault.get("drop"):
            self._record(path, body, SimResponse(0), fault="drop")
            self.close_connection = True
            return True
        status = int(fault.get("status", 503))
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = f"{float(fault['retry_after']):g}"
        code = {429: 53, 503: 5, 401: 42}.get(status, status // 100)
        response = gateway_error(status, code, "Injected fault", "Injected by the simulator")
        response.headers.update(headers)
        self._record(path, body, response, fault=str(status))
        self._send(response)
        return True

    def _control(self, path: str, body: bytes) -> SimResponse:
        state = self.server.state
        if path == "/_sim/requests" and self.command == "GET":
            with state.lock:
                return SimResponse(200, list(state.log))
        if path == "/_sim/requests" and self.command == "DELETE":
            with state.lock:
                state.log.clear()
            return SimResponse(204)
        if path == "/_sim/state" and self.command == "GET":
            return SimResponse(200, state.snapshot())
        if path == "/_sim/faults" and self.command == "POST":
            try:
                state.apply(json.loads(body or b"{}"))
            except (ValueError, KeyError, TypeError) as exc:
                return SimResponse(400, {"error": f"bad fault switch: {exc}"})
            return SimResponse(200, state.snapshot())
        return SimResponse(404, {"error": f"no control endpoint {path}"})

    def _record(self, path: str, body: bytes, response: SimResponse,
                fault: str | None = None) -> None:
        try:
            parsed = json.loads(body) if body and not path.startswith("/oauth/") else None
        except ValueError:
            parsed = body.decode(errors="replace")
        entry = {"ts": iso_now(), "method": self.command, "path": path, "body": parsed,
                 "status": response.status, "executed": response.executed, "fault": fault,
                 "grant_type": None}
        if path == "/oauth/token":
            entry["grant_type"] = parse_qs(body.decode(errors="replace")).get(
                "grant_type", [None])[0]
        with self.server.state.lock:
            self.server.state.log.append(entry)

    def _send(self, response: SimResponse) -> None:
        payload = response.encoded()
        self.send_response(response.status)
        self.send_header(REQUEST_ID_HEADER, self.server.state.request_id())
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.headers.get("X-Sim-Page"):
            payload = f"<html><body><h1>{response.body['error_page']}</h1></body></html>".encode()
            self.send_header("Content-Type", "text/html; charset=utf-8")
        elif payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    state: SimulatorState


class Simulator:
    """The simulator, started in a background thread (tests, demo) or in the foreground."""

    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self.state = SimulatorState(self.settings)
        self._server = _Server((self.settings.host, self.settings.port), _Handler)
        self._server.state = self.state
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self.settings.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/oauth"

    def start(self) -> Simulator:
        self._thread = threading.Thread(target=self._server.serve_forever, name="simulator",
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def issue_tokens(self) -> dict[str, object]:
        """Tokens for the demo account without the browser step (demo and `--token-file`)."""
        with self.state.lock:
            return self.state.oauth.issue()

    def write_token_file(self, path: Path, expires_in: int | None = None) -> None:
        """A token file for the demo account, as `login` would write it (mode 0600).

        ``expires_in`` overrides what the file says about the expiry (tests of refresh).
        """
        answer = self.issue_tokens()
        lifetime = int(str(answer["expires_in"])) if expires_in is None else expires_in
        TokenStore(path).save(tokens_from_json(
            {**answer, "expires_at": int(time.time()) + lifetime}, "simulator"))

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.log)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
