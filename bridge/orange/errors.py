"""Orange HTTP failures -> bridge errors: the table of SPEC section 1, in ONE place."""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import ApiError, PermanentApiError, TransientApiError

# (HTTP status, Orange code or None for any) -> bridge error code
_TABLE: dict[tuple[int, int | None], str] = {
    (400, None): "bad_request",
    (401, None): "auth_required",
    (403, None): "forbidden",
    (404, None): "device_not_found",
    (406, None): "bad_request",
    (409, 61): "device_standby",
    (409, 62): "device_unreachable",
    (409, None): "device_standby",
    (429, None): "rate_limited",
}
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_TEXTS = {
    "bad_request": "the API refused the request",
    "auth_required": "the access token was refused",
    "forbidden": "access denied (a secondary account, or the tv_remote scope is missing)",
    "device_not_found": "the decoder is not in this household",
    "device_standby": "the decoder is in standby: only power on is accepted",
    "device_unreachable": "the decoder is in deep sleep or unreachable: it cannot be woken",
    "rate_limited": "Orange says too many requests",
    "api_unavailable": "the Orange API is unavailable",
}


def error_code(status: int, orange_code: int | None) -> str:
    """The bridge error code for an HTTP error status and Orange's ``code`` field."""
    if status in _TRANSIENT_STATUSES and status != 429:
        return "api_unavailable"
    code = _TABLE.get((status, orange_code)) or _TABLE.get((status, None))
    if code is not None:
        return code
    return "api_unavailable" if status >= 500 else "bad_request"


def is_transient_status(status: int) -> bool:
    return status in _TRANSIENT_STATUSES or status >= 500


def parse_body(content: bytes) -> dict[str, Any] | None:
    """Orange's ``{"code","message","description"}`` body, or None when it is not that."""
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def api_error(
    status: int,
    content: bytes,
    *,
    request_id: str | None,
    device_id: str | None,
    retry_after: str | None = None,
) -> ApiError:
    """Build the error for a non-2xx answer."""
    body = parse_body(content) or {}
    raw_code = body.get("code")
    orange_code: int | None = None
    if isinstance(raw_code, int | str) and str(raw_code).strip().isdigit():
        orange_code = int(str(raw_code))
    code = error_code(status, orange_code)
    detail = body.get("description") or body.get("message")
    text = _TEXTS.get(code, "the API refused the request")
    message = f"{text} (HTTP {status}"
    if orange_code is not None:
        message += f", code {orange_code}"
    if request_id:  # Orange support asks for it: keep it with the error wherever it goes
        message += f", request id {request_id}"
    message += ")"
    if isinstance(detail, str) and detail:
        message += f": {detail[:200]}"
    wait = _retry_after_seconds(retry_after)
    cls = TransientApiError if is_transient_status(status) else PermanentApiError
    return cls(message, code=code, status=status, orange_code=orange_code,
               request_id=request_id, device_id=device_id, retry_after=wait)


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # HTTP-date form: fall back to our own back-off
    return max(0.0, seconds)
