"""The ``orangetv2mqtt`` command line (SPEC section 4)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import yaml

from bridge import __version__
from bridge.config import Config, load_config, masked
from bridge.discovery import name_devices
from bridge.errors import AuthError, BridgeError, CommandError, ConfigError
from bridge.executor import error_info, execute
from bridge.logs import setup_logging
from bridge.models import Result
from bridge.orange.api import OrangeApi, new_http_client
from bridge.orange.auth import TokenManager, TokenStore
from bridge.systemd import Notifier

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_LOGIN = 0, 1, 2, 3
DEFAULT_CONFIG = os.environ.get("ORANGETV2MQTT_CONFIG", "config.yaml")
_LOGGER = logging.getLogger("bridge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orangetv2mqtt",
        description="MQTT bridge for Orange TV decoders (cloud API \"Pilotage Décodeur TV\").",
        epilog="Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage, 3 login required. "
               "Try it without a decoder: `orangetv2mqtt demo`.",
    )
    parser.add_argument("--version", action="version", version=f"orangetv2mqtt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"config file (default: {DEFAULT_CONFIG}, or $ORANGETV2MQTT_CONFIG)")
        p.add_argument("--insecure-token-file", action="store_true",
                       help="accept a token file that others can read (not recommended)")
        return p

    with_config("run", "run the bridge daemon (SIGTERM/SIGINT stop it cleanly)")
    login = with_config("login", "sign in to Orange once and store the token file")
    login.add_argument("--no-browser", action="store_true", help="do not open a browser")
    login.add_argument("--paste", action="store_true",
                       help="paste the redirected URL instead of catching it locally")
    login.add_argument("--timeout", type=float, default=300.0,
                       help="seconds to wait for the login to complete (default 300)")
    devices = with_config("devices", "list the decoders the account can see")
    devices.add_argument("--json", action="store_true", help="print the bridge/devices JSON list")
    send = with_config("send", "send one command straight to the API and print its result")
    send.add_argument("device", help="friendly name or deviceId")
    send.add_argument("action", help="zap, key, launch, power, macro, or a JSON command")
    send.add_argument("value", nargs="?", help="e.g. TF1, VOL_UP, netflix, on")
    with_config("check-config", "validate the config and print it with secrets masked")

    from bridge.simulator.cli import add_arguments as add_simulator_arguments

    simulate = sub.add_parser(
        "simulate", help="serve our model of Orange's API with a demo household",
        description="Serve SPEC section 1 (OAuth included, logins approved at once) with a "
                    "demo household, for trying the bridge and building flows without a decoder.")
    add_simulator_arguments(simulate)
    demo = sub.add_parser("demo", help="simulator + bridge + broker: see it work in a minute",
                          description="Start the simulator and the bridge on a local broker, "
                                      "send one command, print its result, then keep running.")
    demo.add_argument("--broker-port", type=int, default=1883,
                      help="broker port to try first (default 1883)")
    demo.add_argument("--once", action="store_true",
                      help="stop after the first round trip (for scripts and CI)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except AuthError as exc:
        print(f"login required: {exc.message}", file=sys.stderr)
        return EXIT_LOGIN
    except BridgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        from bridge.simulator.cli import run_simulator

        setup_logging("info")
        return run_simulator(args)
    if args.command == "demo":
        from bridge.demo import run_demo

        setup_logging("warning")
        return run_demo(args.broker_port, once=args.once)
    config = load_config(args.config)
    level = config.logging.level
    if args.command != "run" and level == "info":
        level = "warning"  # one-shot commands print their outcome; INFO lines would repeat it
    setup_logging(level, config.logging.format)
    if args.command == "check-config":
        print(yaml.safe_dump(masked(config), sort_keys=False, allow_unicode=True), end="")
        print(f"# {args.config}: OK", file=sys.stderr)
        return EXIT_OK
    if args.command == "run":
        return run_daemon(config, insecure=args.insecure_token_file)
    if args.command == "login":
        from bridge.login import run_login

        return run_login(config, args)
    if args.command == "devices":
        return asyncio.run(_devices(config, args))
    if args.command == "send":
        return asyncio.run(_send(config, args))
    raise AssertionError(args.command)


async def _api(config: Config, insecure: bool) -> OrangeApi:
    """An API client for one-shot commands; raises AuthError (exit 3) without a usable token."""
    tokens_store = TokenStore(config.orange.token_file, insecure=insecure)
    tokens_store.load()  # fail before opening any connection
    client = new_http_client(config.orange)
    tokens = TokenManager(config.orange, client, tokens_store)
    tokens.load()
    return OrangeApi(config.orange, client, tokens)


async def _devices(config: Config, args: argparse.Namespace) -> int:
    api = await _api(config, args.insecure_token_file)
    try:
        devices = name_devices(await api.fetch_devices(), config.devices)
    finally:
        await api.client.aclose()
    if args.json:
        print(json.dumps([d.to_json() for d in devices], indent=2, ensure_ascii=False))
        return EXIT_OK
    rows = [("FRIENDLY NAME", "DEVICE ID", "NAME", "MODEL", "LAST SEEN")]
    rows += [(d.friendly_name, d.device_id, d.name, d.model, d.last_seen or "-") for d in devices]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())
    if not devices:
        print("(no decoder seen in the last 2 months)")
    return EXIT_OK


async def _send(config: Config, args: argparse.Namespace) -> int:
    parser = config.parser()
    started = time.monotonic()
    try:
        if args.action.lstrip().startswith("{"):
            if args.value is not None:
                raise CommandError("give either a JSON command or ACTION VALUE, not both")
            command = parser.parse(args.action.encode())
        else:
            if args.value is None:
                raise CommandError(f"{args.action}: a value is needed, e.g. "
                                   "`send salon zap TF1`")
            command = parser.parse(args.value.encode(), args.action.lower())
    except CommandError as exc:
        _print_result(Result(id=None, device=args.device, device_id=None, action=args.action,
                             ok=False, error=error_info(exc)).to_json())
        return EXIT_FAILURE
    api = await _api(config, args.insecure_token_file)
    try:
        devices = name_devices(await api.fetch_devices(), config.devices)
        device = next((d for d in devices if args.device in (d.friendly_name, d.device_id)), None)
        if device is None:
            known = ", ".join(d.friendly_name for d in devices) or "none"
            error = CommandError(f"no decoder '{args.device}' (known: {known})",
                                 code="unknown_device")
            _print_result(Result(id=command.id, device=args.device, device_id=None,
                                 action=command.action, ok=False,
                                 error=error_info(error)).to_json())
            return EXIT_FAILURE
        outcome = await execute(api, device, command, segment=args.device, arrived=started,
                                ttl=config.commands.ttl)
    finally:
        await api.client.aclose()
    if outcome.result.error is not None and outcome.result.error.code == "auth_required":
        _print_result(outcome.result.to_json())
        return EXIT_LOGIN
    _print_result(outcome.result.to_json())
    return EXIT_OK if outcome.result.ok else EXIT_FAILURE


def _print_result(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False))


def run_daemon(config: Config, *, insecure: bool = False) -> int:
    from bridge.app import Bridge

    async def serve() -> None:
        bridge = Bridge(config, insecure_token_file=insecure)
        notifier = Notifier()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        _LOGGER.info("orangetv2mqtt %s starting: broker %s:%d, base topic %s", __version__,
                     config.mqtt.host, config.mqtt.port, config.mqtt.base_topic)
        await bridge.start()
        notifier.ready(f"serving on {config.mqtt.host}:{config.mqtt.port}, "
                       f"base topic {config.mqtt.base_topic}")
        await stop.wait()
        _LOGGER.info("stopping")
        notifier.stopping()
        await bridge.stop()
        _LOGGER.info("stopped")

    asyncio.run(serve())
    return EXIT_OK
