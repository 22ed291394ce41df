from __future__ import annotations

import asyncio
import json

import pytest

from bridge.config import RetryConfig
from bridge.errors import ExpiredError, PermanentApiError, TransientApiError
from bridge.orange.errors import api_error, error_code
from bridge.ratelimit import TokenBucket
from bridge.retry import RetryPolicy, backoff, is_transient


@pytest.mark.parametrize(("status", "code", "expected", "transient"), [
    (400, 20, "bad_request", False), (401, 42, "auth_required", False),
    (403, 50, "forbidden", False), (404, 60, "device_not_found", False),
    (406, 25, "bad_request", False), (409, 61, "device_standby", False),
    (409, 62, "device_unreachable", False), (429, 53, "rate_limited", True),
    (500, None, "api_unavailable", True), (502, None, "api_unavailable", True),
    (503, 5, "api_unavailable", True), (504, None, "api_unavailable", True),
])
def test_error_table(status: int, code: int | None, expected: str, transient: bool) -> None:
    body = json.dumps({"code": code, "message": "m", "description": "d"}).encode()
    error = api_error(status, body, request_id="rid-1", device_id="dev", retry_after="2")
    assert error.code == expected == error_code(status, code)
    assert isinstance(error, TransientApiError if transient else PermanentApiError)
    assert is_transient(error) is transient
    assert error.request_id == "rid-1"
    assert f"HTTP {status}" in error.message


def test_html_error_body_and_retry_after() -> None:
    error = api_error(503, b"<html>oops</html>", request_id=None, device_id=None,
                      retry_after="3")
    assert error.code == "api_unavailable" and error.retry_after == 3.0
    assert api_error(429, b"", request_id=None, device_id=None,
                     retry_after="Wed, 21 Oct 2026 07:28:00 GMT").retry_after is None


def test_backoff_grows_with_jitter_and_cap() -> None:
    for attempt in range(1, 8):
        value = backoff(attempt, max_delay=4)
        ceiling = min(4, 0.5 * 2 ** (attempt - 1))
        assert ceiling / 2 <= value <= ceiling
    assert backoff(1, 4, retry_after=7) == 7  # Retry-After wins over our own back-off


async def test_retry_policy_stops_at_max_attempts() -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        raise TransientApiError("down", code="api_unavailable")

    policy = RetryPolicy(RetryConfig(max_attempts=3, max_delay=0.01), deadline=None)
    with pytest.raises(TransientApiError):
        async for attempt in policy.retrying():
            with attempt:
                await flaky()
    assert calls == 3 and not policy.stopped_by_deadline


async def test_retry_policy_never_retries_permanent() -> None:
    calls = 0
    policy = RetryPolicy(RetryConfig(max_attempts=5, max_delay=0.01), deadline=None)
    with pytest.raises(PermanentApiError):
        async for attempt in policy.retrying():
            with attempt:
                calls += 1
                raise PermanentApiError("no", code="bad_request")
    assert calls == 1


async def test_retry_policy_stops_before_deadline() -> None:
    loop = asyncio.get_running_loop()
    policy = RetryPolicy(RetryConfig(max_attempts=5, max_delay=20), deadline=loop.time() + 0.5)
    calls = 0
    with pytest.raises(TransientApiError):
        async for attempt in policy.retrying():
            with attempt:
                calls += 1
                raise TransientApiError("slow down", code="rate_limited", retry_after=5)
    assert calls == 1 and policy.stopped_by_deadline


def test_token_bucket_burst_then_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(per_minute=60, burst=3, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(1.0)
    assert bucket.reserve() == pytest.approx(2.0)  # reservations queue up in order
    now[0] += 10
    assert bucket.reserve() == 0  # refilled, capped at burst


def test_token_bucket_refuses_past_deadline_without_taking() -> None:
    now = [0.0]
    bucket = TokenBucket(per_minute=6, burst=1, clock=lambda: now[0])
    bucket.reserve()
    with pytest.raises(ExpiredError):
        bucket.reserve(deadline=5.0)  # the next token comes at t=10
    assert bucket.reserve(deadline=11.0) == pytest.approx(10.0)
