"""OAuth tokens: the token file, code exchange and single-flight refresh.

Secrets (client secret, access and refresh tokens) never reach a log line, an exception
message or MQTT: messages here name what failed, never the value.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import stat
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridge.config import OrangeConfig
from bridge.errors import AuthError, TransientAuthError
from bridge.orange import paths

_LOGGER = logging.getLogger(__name__)

# Refresh when less than this remains (or 10 % of the lifetime, whichever is less).
REFRESH_MARGIN = 300.0
# Orange allows ~50 token requests a minute per app; we stay far below whatever happens.
MAX_TOKEN_REQUESTS_PER_MINUTE = 5
DEFAULT_LIFETIME = 3600.0


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: int | None  # Unix seconds; None when a hand-written file did not say
    scope: str | None = None

    def __repr__(self) -> str:  # never show the secrets, even in a traceback
        return f"Tokens(expires_at={self.expires_at}, scope={self.scope!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": self.scope,
        }


def login_hint(config_path: str | None = None) -> str:
    where = f" -c {config_path}" if config_path else " -c <config.yaml>"
    return f"run `orangetv2mqtt login{where}`"


class TokenStore:
    """The token file: read with clear errors, written atomically with mode 0600."""

    def __init__(self, path: Path, *, insecure: bool = False) -> None:
        self.path = path
        self.insecure = insecure

    def mtime(self) -> float | None:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return None

    def load(self) -> Tokens:
        try:
            mode = self.path.stat().st_mode
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise AuthError(f"no token file at {self.path}: {login_hint()}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise AuthError(f"cannot read the token file {self.path}: "
                            f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO) and not self.insecure:
            raise AuthError(
                f"the token file {self.path} is readable by others (mode {mode & 0o777:o}): "
                f"run `chmod 600 {self.path}` (or pass --insecure-token-file)"
            )
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise AuthError(f"the token file {self.path} is not valid JSON: "
                            f"{login_hint()}") from exc
        return tokens_from_json(data, str(self.path))

    def save(self, tokens: Tokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".token-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(tokens.to_json(), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def tokens_from_json(data: Any, where: str) -> Tokens:
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise AuthError(f"{where}: no access_token in the token file: {login_hint()}")
    refresh = data.get("refresh_token")
    expires_at = data.get("expires_at")
    if isinstance(expires_at, str) and expires_at.isdigit():
        expires_at = int(expires_at)
    if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int)):
        raise AuthError(f"{where}: expires_at must be an integer (Unix seconds)")
    scope = data.get("scope")
    return Tokens(
        access_token=data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else None,
    )


def parse_expires_in(value: Any) -> float:
    """``expires_in`` as seconds; Orange sends it as a number or as a string."""
    try:
        seconds = float(str(value).strip())
    except ValueError:
        return DEFAULT_LIFETIME
    return seconds if seconds > 0 else DEFAULT_LIFETIME


class TokenManager:
    """Hands out a valid access token; refreshes proactively and once after a 401.

    Refreshes are single-flight: however many calls need one at the same moment, one token
    request is made and they all get its result.
    """

    def __init__(
        self,
        config: OrangeConfig,
        client: httpx.AsyncClient,
        store: TokenStore,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.store = store
        self.on_change = on_change
        self._tokens: Tokens | None = None
        self._lifetime = DEFAULT_LIFETIME
        self._lock = asyncio.Lock()
        self._requests: deque[float] = deque()
        self.state = "ok"  # ok | login_required
        self._failed_mtime: float | None = None  # token file as it was when login was required
        self.last_error: str | None = None

    # -- state ---------------------------------------------------------------------------

    def _set_state(self, state: str, error: str | None = None) -> None:
        changed = state != self.state
        if state == "login_required":
            self._failed_mtime = self.store.mtime()
        self.state, self.last_error = state, error
        if changed and self.on_change is not None:
            self.on_change()

    def load(self) -> Tokens:
        """(Re)read the token file; a failure means login is required."""
        try:
            self._tokens = self.store.load()
        except AuthError as exc:
            self._tokens = None
            self._set_state("login_required", exc.message)
            raise
        self._set_state("ok")
        return self._tokens

    def token_file_changed(self) -> bool:
        """Was the token file written (by `login`) since login became required?"""
        mtime = self.store.mtime()
        return mtime is not None and mtime != self._failed_mtime

    def expires_in(self) -> float | None:
        if self._tokens is None or self._tokens.expires_at is None:
            return None
        return self._tokens.expires_at - time.time()

    def _margin(self) -> float:
        return min(REFRESH_MARGIN, 0.1 * self._lifetime)

    def _due(self) -> bool:
        remaining = self.expires_in()
        if remaining is None:
            return True  # a hand-written file without expires_at: refresh to learn it
        return remaining < self._margin()

    def refresh_due_in(self) -> float | None:
        """Seconds until a proactive refresh is due; None without tokens."""
        if self._tokens is None:
            return None
        remaining = self.expires_in()
        return 0.0 if remaining is None else max(0.0, remaining - self._margin())

    # -- the public calls ----------------------------------------------------------------

    async def access_token(self) -> str:
        if self._tokens is None:
            if self.state == "login_required" and not self.token_file_changed():
                raise AuthError(self.last_error or f"login required: {login_hint()}")
            self.load()
        assert self._tokens is not None
        if self._due():
            current = self._tokens.access_token
            try:
                return await self._refresh_once(current)
            except TransientAuthError:
                remaining = self.expires_in()
                if remaining is not None and remaining > 0:
                    return current  # still valid: try again on a later call
                raise
        return self._tokens.access_token

    async def refresh(self) -> None:
        """Refresh now (the daemon's timer); errors propagate, tokens are kept on a 5xx."""
        if self._tokens is None:
            raise AuthError(self.last_error or f"login required: {login_hint()}")
        await self._refresh_once(self._tokens.access_token)

    async def refresh_after_401(self, rejected: str) -> str:
        """The API refused ``rejected``: refresh unless another call already did."""
        return await self._refresh_once(rejected)

    async def _refresh_once(self, stale: str) -> str:
        async with self._lock:
            if self._tokens is None:
                raise AuthError(self.last_error or f"login required: {login_hint()}")
            if self._tokens.access_token != stale:
                return self._tokens.access_token  # someone refreshed while we waited
            refresh_token = self._tokens.refresh_token
            if not refresh_token:
                self._login_required("the token file has no refresh_token")
            assert refresh_token is not None
            data = await self._token_request(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )
            tokens = self._accept(data, keep_refresh=refresh_token)
            _LOGGER.info("access token refreshed, valid for %d s", self._lifetime)
            return tokens.access_token

    async def exchange_code(self, code: str) -> Tokens:
        """Authorization code -> tokens, stored in the token file."""
        data = await self._token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.config.redirect_uri,
        })
        return self._accept(data, keep_refresh=None)

    # -- the token endpoint ---------------------------------------------------------------

    def _accept(self, data: dict[str, Any], keep_refresh: str | None) -> Tokens:
        access = data.get("access_token")
        if not isinstance(access, str) or not access:
            raise TransientAuthError("the token endpoint answered without an access_token")
        refresh = data.get("refresh_token")
        self._lifetime = parse_expires_in(data.get("expires_in", DEFAULT_LIFETIME))
        scope = data.get("scope")
        tokens = Tokens(
            access_token=access,
            refresh_token=refresh if isinstance(refresh, str) and refresh else keep_refresh,
            expires_at=int(time.time() + self._lifetime),
            scope=scope if isinstance(scope, str) else paths.SCOPE,
        )
        self.store.save(tokens)
        self._tokens = tokens
        self._set_state("ok")
        return tokens

    def _login_required(self, why: str) -> None:
        message = f"{why}: {login_hint()}"
        self._tokens = None
        self._set_state("login_required", message)
        raise AuthError(message)

    def _throttle(self) -> None:
        now = time.monotonic()
        while self._requests and now - self._requests[0] > 60:
            self._requests.popleft()
        if len(self._requests) >= MAX_TOKEN_REQUESTS_PER_MINUTE:
            raise TransientAuthError(
                f"held back: {MAX_TOKEN_REQUESTS_PER_MINUTE} token requests in the last minute"
            )
        self._requests.append(now)

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        self._throttle()
        basic = base64.b64encode(
            f"{self.config.client_id}:{self.config.client_secret}".encode()
        ).decode()
        try:
            response = await self.client.post(
                paths.token_url(self.config.auth_url),
                data=form,
                headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
                timeout=self.config.timeout,
            )
        except httpx.HTTPError as exc:
            raise TransientAuthError(
                f"token endpoint unreachable ({type(exc).__name__})"
            ) from None
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if response.status_code in (400, 401) and error in (
            "invalid_grant", "invalid_client", "unauthorized_client", "invalid_request",
        ):
            what = {
                "invalid_grant": "the refresh token or code was refused (invalid_grant)",
                "invalid_client": "client_id / client_secret refused (invalid_client)",
            }.get(str(error), f"the token request was refused ({error})")
            self._login_required(what)
        raise TransientAuthError(f"token endpoint answered HTTP {response.status_code}")
