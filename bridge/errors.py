"""The exception tree of the bridge.

::

    BridgeError
    ├── ConfigError          start-up, exit 2, lists every problem
    ├── AuthError            no usable token: login required (exit 3, `auth_required` results)
    │   └── TransientAuthError   token endpoint down or timing out: keep tokens, retry later
    ├── ApiError             carries status, Orange code, X-OAPI-Request-Id, deviceId
    │   ├── TransientApiError    timeouts, connect errors, 429, 5xx   (retried)
    │   └── PermanentApiError    other 4xx                             (not retried)
    ├── CommandError         bad topic or payload -> error result, never retried
    │   └── ExpiredError         the command outlived its TTL before an attempt could start
    └── MqttLinkError

Every error that ends up in a result carries ``code``: one of SPEC section 2's error codes.
"""

from __future__ import annotations

# Codes that may succeed if the same command is sent again later.
RETRYABLE_CODES = frozenset(
    {"api_unavailable", "timeout", "rate_limited", "queue_full", "expired", "auth_required"}
)


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE_CODES


class ConfigError(BridgeError):
    """The configuration is unusable; ``problems`` holds one line per problem."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class AuthError(BridgeError):
    """No usable access token: the user must run ``orangetv2mqtt login``."""

    code = "auth_required"


class TransientAuthError(AuthError):
    """The token endpoint failed for a passing reason (5xx, timeout): tokens are kept."""

    code = "api_unavailable"


class ApiError(BridgeError):
    """An Orange API call failed."""

    code = "api_error"

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        orange_code: int | None = None,
        request_id: str | None = None,
        device_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.orange_code = orange_code
        self.request_id = request_id
        self.device_id = device_id
        self.retry_after = retry_after


class TransientApiError(ApiError):
    """Worth another attempt: timeouts, connection errors, 429 and 5xx."""


class PermanentApiError(ApiError):
    """Not worth another attempt: the request itself is refused."""


class CommandError(BridgeError):
    """A command topic or payload the bridge refuses; never sent to the API."""

    code = "invalid_command"


class ExpiredError(CommandError):
    """The command's TTL passed before an attempt could start."""

    code = "expired"


class MqttLinkError(BridgeError):
    """The MQTT broker could not be used."""

    code = "mqtt_error"
