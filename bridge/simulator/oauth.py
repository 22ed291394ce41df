"""The simulator's OAuth 2.0 authorization server (SPEC section 1.1), auto-approving."""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from bridge.simulator.model import SimResponse

CODE_LIFETIME = 120.0
TOKEN_REQUESTS_PER_MINUTE = 50  # Orange's documented limit on its token endpoints


@dataclass(slots=True)
class OAuthSettings:
    client_id: str = "demo"
    client_secret: str = "demo"  # noqa: S105 - the simulator's published demo credentials
    token_lifetime: int = 3600
    rotate_refresh: bool = True
    expires_in_as_string: bool = False
    redirect_uris: tuple[str, ...] = ()  # registered redirect URIs; empty accepts any
    authorize_error: str | None = None  # e.g. "access_denied": refuse every login


@dataclass(slots=True)
class _Access:
    expires: float
    revoked: bool = False


@dataclass(slots=True)
class OAuthServer:
    settings: OAuthSettings = field(default_factory=OAuthSettings)
    access: dict[str, _Access] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)
    codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (redirect, exp)
    token_times: list[float] = field(default_factory=list)

    # -- API side -------------------------------------------------------------------------

    def check_bearer(self, header: str | None) -> tuple[int, str] | None:
        """None when the bearer token is good, else (Orange code, message)."""
        if not header or not header.startswith("Bearer ") or not header[7:].strip():
            return 40, "Missing credentials"
        entry = self.access.get(header[7:].strip())
        if entry is None or entry.revoked:
            return 41, "Invalid credentials"
        if entry.expires < time.time():
            return 42, "Expired credentials"
        return None

    def expire_access_tokens(self) -> None:
        for entry in self.access.values():
            entry.expires = 0

    def revoke_refresh_tokens(self) -> None:
        self.refresh.clear()

    def issue(self, *, with_refresh: bool = True) -> dict[str, object]:
        access = secrets.token_urlsafe(24)
        lifetime = self.settings.token_lifetime
        self.access[access] = _Access(time.time() + lifetime)
        answer: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": str(lifetime) if self.settings.expires_in_as_string else lifetime,
            "scope": "tv_remote",
        }
        if with_refresh:
            refresh = secrets.token_urlsafe(32)
            self.refresh.add(refresh)
            answer["refresh_token"] = refresh
        return answer

    # -- /authorize -----------------------------------------------------------------------

    def authorize(self, query: str) -> SimResponse:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        redirect = params.get("redirect_uri", "")
        if params.get("client_id") != self.settings.client_id:
            return _page(400, "Authentication error: unknown client_id")
        if not redirect or not urlsplit(redirect).scheme.startswith("http"):
            return _page(400, "Authentication error: missing or invalid redirect_uri")
        if self.settings.redirect_uris and redirect not in self.settings.redirect_uris:
            return _page(400, "Authentication error: redirect_uri is not declared for this app")
        state = params.get("state")
        error = None
        if params.get("response_type") != "code":
            error = ("unsupported_response_type", "response_type must be code")
        elif "tv_remote" not in params.get("scope", "").split():
            error = ("invalid_scope", "scope tv_remote is required")
        elif not state:
            error = ("invalid_request", "state is mandatory")
        elif self.settings.authorize_error:
            error = (self.settings.authorize_error, "The user refused the authorization")
        if error is not None:
            query_out = {"error": error[0], "error_description": error[1]}
            if state:
                query_out["state"] = state
            return _redirect(redirect, query_out)
        code = secrets.token_urlsafe(16)
        self.codes[code] = (redirect, time.time() + CODE_LIFETIME)
        return _redirect(redirect, {"code": code, "state": state or ""})

    # -- /token ---------------------------------------------------------------------------

    def token(self, authorization: str | None, form: dict[str, str]) -> SimResponse:
        now = time.time()
        self.token_times = [t for t in self.token_times if now - t < 60] + [now]
        if len(self.token_times) > TOKEN_REQUESTS_PER_MINUTE:
            return SimResponse(429, {"code": 53, "message": "Too many requests",
                                     "description": "Token request rate exceeded"},
                               {"Retry-After": "60"})
        if not self._client_ok(authorization):
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        grant = form.get("grant_type")
        if grant == "authorization_code":
            entry = self.codes.pop(form.get("code", ""), None)
            if entry is None or entry[1] < now:
                return _oauth_error(400, "invalid_grant", "Unknown or expired code")
            if form.get("redirect_uri") != entry[0]:
                return _oauth_error(400, "invalid_grant", "redirect_uri does not match")
            return SimResponse(200, self.issue())
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in self.refresh:
                return _oauth_error(400, "invalid_grant", "Unknown or revoked refresh token")
            if self.settings.rotate_refresh:
                self.refresh.discard(refresh)
                return SimResponse(200, self.issue())
            return SimResponse(200, self.issue(with_refresh=False))
        return _oauth_error(400, "unsupported_grant_type", f"grant_type {grant!r}")

    def _client_ok(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except ValueError:
            return False
        client_id, _, secret = decoded.partition(":")
        return (secrets.compare_digest(client_id, self.settings.client_id)
                and secrets.compare_digest(secret, self.settings.client_secret))


def _oauth_error(status: int, error: str, description: str) -> SimResponse:
    return SimResponse(status, {"error": error, "error_description": description})


def _redirect(uri: str, params: dict[str, str]) -> SimResponse:
    joiner = "&" if urlsplit(uri).query else "?"
    return SimResponse(302, None, {"Location": f"{uri}{joiner}{urlencode(params)}"})


def _page(status: int, text: str) -> SimResponse:
    return SimResponse(status, {"error_page": text}, {"X-Sim-Page": "1"})
