"""``orangetv2mqtt simulate``: arguments and the foreground server."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any


def fault_spec(text: str) -> dict[str, Any]:
    """``503``, ``429:2`` (Retry-After seconds), ``hang:5``, ``drop``."""
    kind, _, arg = text.partition(":")
    try:
        if kind == "drop":
            return {"drop": True}
        if kind == "hang":
            return {"hang": float(arg or 30)}
        status = int(kind)
        if not 400 <= status <= 599:
            raise ValueError
        fault: dict[str, Any] = {"status": status}
        if arg:
            fault["retry_after"] = float(arg)
        return fault
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a status (503), 429:SECONDS, hang:SECONDS or drop") from None


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("expected a probability between 0 and 1")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8900, help="port (default 8900; 0 = any free)")
    p.add_argument("--decoders", type=int, default=2, help="decoders in the household (default 2)")
    p.add_argument("--token-file", help="also write a ready token file for the demo account "
                                        "(skips `login` when trying the CLI)")
    p.add_argument("--token-lifetime", type=int, default=3600,
                   help="access token lifetime in seconds (default 3600)")
    p.add_argument("--no-rotate", action="store_true",
                   help="refresh does not return a new refresh token")
    p.add_argument("--expires-in-string", action="store_true",
                   help='send expires_in as a string ("3600"), as some Orange endpoints do')
    p.add_argument("--no-status", action="store_true",
                   help="answer the status call with 404, as the real API may")
    p.add_argument("--latency-ms", type=float, default=0.0, help="delay every answer")
    p.add_argument("--fail-next", type=fault_spec, action="append", default=[],
                   metavar="FAULT", help="inject a fault into the next API call: 503, "
                   "429:SECONDS, hang:SECONDS or drop (repeat for several)")
    p.add_argument("--random-503", type=probability, default=0.0, metavar="P",
                   help="answer this share of API calls with 503")
    p.add_argument("--random-429", type=probability, default=0.0, metavar="P",
                   help="answer this share of API calls with 429 and Retry-After: 1")
    p.add_argument("--authorize-error", metavar="ERROR",
                   help="refuse every login with this error (e.g. access_denied)")
    p.add_argument("--redirect-uri", action="append", default=[],
                   help="declared redirect URI (repeatable; default: accept any)")
    p.add_argument("--verbose", action="store_true", help="log every request")


def run_simulator(args: argparse.Namespace) -> int:
    from bridge.simulator.oauth import OAuthSettings
    from bridge.simulator.server import Simulator, SimulatorSettings

    settings = SimulatorSettings(
        host=args.host, port=args.port, decoders=args.decoders,
        status_offered=not args.no_status, latency_ms=args.latency_ms, quiet=not args.verbose,
        faults=list(args.fail_next),
        oauth=OAuthSettings(token_lifetime=args.token_lifetime, rotate_refresh=not args.no_rotate,
                            expires_in_as_string=args.expires_in_string,
                            redirect_uris=tuple(args.redirect_uri),
                            authorize_error=args.authorize_error),
    )
    try:
        sim = Simulator(settings)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    if args.random_503 or args.random_429:
        sim.state.apply({"random": {"p503": args.random_503, "p429": args.random_429}})
    token_note = ""
    if args.token_file:  # before anything is printed: a script may wait for the banner
        sim.write_token_file(Path(args.token_file))
        token_note = (f"  token file for the demo account written to {args.token_file} "
                      "(mode 0600)\n")
    print(f"Orange API simulator (SPEC section 1) listening on {sim.url}")
    print(f"  orange.api_url:  {sim.url}")
    print(f"  orange.auth_url: {sim.auth_url}")
    print("  client_id: demo   client_secret: demo   (logins are approved at once)")
    print("  decoders: " + ", ".join(
        f"{d.name} ({d.device_id}, {d.power})" for d in sim.state.household.decoders.values()))
    print(f"  control: {sim.url}/_sim/state, /_sim/requests, POST /_sim/faults")
    print(f"{token_note}Press Ctrl+C to stop.", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0
