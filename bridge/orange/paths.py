"""Every Orange URL and path of SPEC section 1, in one place.

Adapting the bridge to the real (private) swagger should only need edits here and, for body
shapes, in :mod:`bridge.orange.api`. Base URLs come from the config (``orange.api_url``,
``orange.auth_url``).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

# OAuth (relative to orange.auth_url)
AUTHORIZE = "/authorize"
TOKEN = "/token"  # noqa: S105 - a path, not a secret
SCOPE = "tv_remote"

# Decoder API (relative to orange.api_url)
DEVICES = "/devices"
STATUS = "/devices/{device_id}/status"
POWER_ON = "/devices/{device_id}/power-on"
STANDBY = "/devices/{device_id}/standby"
ZAP = "/devices/{device_id}/zap"
LAUNCH = "/devices/{device_id}/applications/launch"
KEYS = "/devices/{device_id}/keys"

# Response header carrying Orange's request id, logged with every error.
REQUEST_ID_HEADER = "X-OAPI-Request-Id"

# Real Orange endpoints, for the example config and docs.
ORANGE_AUTH_URL = "https://api.orange.com/openidconnect/fr/v1"


def device_path(template: str, device_id: str) -> str:
    return template.format(device_id=quote(device_id, safe=""))


def authorize_url(auth_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = urlencode({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": state,
        "prompt": "login",
    })
    return f"{auth_url}{AUTHORIZE}?{query}"


def token_url(auth_url: str) -> str:
    return f"{auth_url}{TOKEN}"
