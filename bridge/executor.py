"""Carry out one validated command on one decoder and describe the outcome as a Result.

Shared by the daemon's per-decoder workers and by ``orangetv2mqtt send``. The TTL gates the
start of every attempt: a command that waited too long is answered ``expired`` and never sent.
Sequence steps get their own TTL, counted from the moment the step becomes due.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from bridge.errors import BridgeError, ExpiredError
from bridge.models import Command, Device, ErrorInfo, Result
from bridge.orange.api import Attempts, OrangeApi

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened: the result and the steps that changed the decoder."""

    result: Result
    done: tuple[Command, ...]


def error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, BridgeError):
        return ErrorInfo(exc.code, exc.message, exc.retryable)
    return ErrorInfo("internal_error", f"unexpected {type(exc).__name__}", False)


async def execute(
    api: OrangeApi,
    device: Device,
    command: Command,
    *,
    segment: str,
    arrived: float,
    ttl: float,
) -> Outcome:
    """Run ``command`` (a single action, a macro or a sequence); never raises BridgeError."""
    attempts = Attempts()
    started = time.monotonic()
    steps = command.steps if command.action in ("macro", "sequence") else (command,)
    done: list[Command] = []
    failure: BaseException | None = None
    failed_step: int | None = None
    deadline = arrived + (command.ttl if command.ttl is not None else ttl)
    for index, step in enumerate(steps):
        try:
            if time.monotonic() > deadline:
                raise ExpiredError(f"older than its TTL ({deadline - arrived:g} s) "
                                   "when its turn came; not sent")
            if step.action == "wait":
                await asyncio.sleep(step.seconds)
            else:
                await api.send(device.device_id, step, deadline, attempts)
                done.append(step)
        except BridgeError as exc:
            failure, failed_step = exc, index
            break
        except Exception as exc:  # a bug must cost one command, never the daemon
            _LOGGER.exception("%s: unexpected error running %s", segment, step.describe())
            failure, failed_step = exc, index
            break
        # the next step's TTL counts from now: a macro's waits must not expire it
        deadline = time.monotonic() + (command.ttl if command.ttl is not None else ttl)

    is_sequence = command.action in ("macro", "sequence")
    result = Result(
        id=command.id,
        device=segment,
        device_id=device.device_id,
        action=command.action,
        ok=failure is None,
        attempts=attempts.count,
        duration_ms=round((time.monotonic() - started) * 1000),
        error=error_info(failure) if failure is not None else None,
        steps=(failed_step if failed_step is not None else len(steps)) if is_sequence else None,
        failed_step=failed_step if is_sequence else None,
    )
    if failure is not None:
        _LOGGER.warning("%s: %s failed: %s: %s", segment, command.describe(),
                        result.error.code if result.error else "?", failure,
                        extra={"device": segment,
                               "request_id": getattr(failure, "request_id", None)})
    return Outcome(result, tuple(done))
