"""``orangetv2mqtt login``: the one interactive step, made easy on a headless box.

Builds the authorize URL (scope tv_remote, prompt=login, a fresh random state), catches the
redirect on a local ``redirect_uri`` (or takes the pasted URL), checks ``state``, exchanges the
code and stores the token file (0600). Secrets are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import socket
import sys
import threading
import time
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bridge.config import Config
from bridge.discovery import name_devices
from bridge.errors import AuthError, BridgeError
from bridge.orange import paths
from bridge.orange.api import OrangeApi, new_http_client
from bridge.orange.auth import TokenManager, TokenStore

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
CHECKLIST = """Orange refused the login. Check, on your app's page at developer.orange.com:
  - the redirect URL {redirect} is declared in the app settings;
  - the authorize URL carries prompt=login and scope=tv_remote (this tool always sends both);
  - you signed in with the MAIN e-mail of the household's Orange contract (secondary accounts
    are refused on purpose)."""


class LoginError(BridgeError):
    code = "login_failed"


def is_local(redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and parts.port is not None


def code_from_redirect(url: str, expected_state: str, redirect_uri: str) -> str:
    """The authorization code from the redirected URL (or its query), after the checks."""
    text = url.strip()
    query = urlsplit(text).query if "://" in text else text.lstrip("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if "error" in params:
        description = params.get("error_description", "")
        raise LoginError(f"login refused: {params['error']}"
                         + (f" ({description})" if description else "") + "\n"
                         + CHECKLIST.format(redirect=redirect_uri))
    if params.get("state") != expected_state:
        raise LoginError("login refused: the state in the redirect does not match this login "
                         "attempt (an old or forged link?). Run `login` again.")
    code = params.get("code")
    if not code:
        raise LoginError("the pasted URL has no code=…: paste the whole address the browser "
                         "was sent to after signing in")
    return code


def catch_redirect(redirect_uri: str, timeout: float) -> str:
    """Listen once on the local redirect URI; return the query string it was called with."""
    parts = urlsplit(redirect_uri)
    host = (parts.hostname or "127.0.0.1").strip("[]")
    found: dict[str, str] = {}
    done = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != (parts.path or "/"):
                self.send_error(404)
                return
            found["query"] = url.query
            ok = "code=" in url.query and "error=" not in url.query
            text = ("Signed in: you can close this tab and go back to the terminal." if ok
                    else "The login did not succeed: see the terminal for what to check.")
            body = f"<html><body><p>orangetv2mqtt: {text}</p></body></html>".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            done.set()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server_class = HTTPServer
    if ":" in host:
        class V6(HTTPServer):
            address_family = socket.AF_INET6

        server_class = V6
    try:
        server = server_class((host, parts.port or 80), Handler)
    except OSError as exc:
        raise LoginError(f"cannot listen on {host}:{parts.port} for the redirect "
                         f"({exc.strerror}); use --paste") from exc
    server.timeout = 0.5
    deadline = time.monotonic() + timeout
    try:
        while not done.is_set():
            if time.monotonic() > deadline:
                raise LoginError(f"no login completed within {timeout:g} s; run `login` again")
            server.handle_request()
    finally:
        server.server_close()
    return found["query"]


async def finish_login(config: Config, code: str, insecure: bool = False) -> list[str]:
    """Exchange the code, store the tokens, and list the decoders the account can see."""
    async with new_http_client(config.orange) as client:
        tokens = TokenManager(config.orange, client,
                              TokenStore(config.orange.token_file, insecure=insecure))
        await tokens.exchange_code(code)
        api = OrangeApi(config.orange, client, tokens)
        devices = name_devices(await api.fetch_devices(), config.devices)
    return [f"{d.friendly_name} ({d.device_id}, {d.name})" for d in devices]


async def login_without_browser(config: Config) -> None:
    """Follow an auto-approving authorize endpoint (our simulator) and store the tokens."""
    state = secrets.token_urlsafe(16)
    url = paths.authorize_url(config.orange.auth_url, config.orange.client_id,
                              config.orange.redirect_uri, state)
    async with httpx.AsyncClient(timeout=config.orange.timeout) as client:
        response = await client.get(url)
    location = response.headers.get("location")
    if response.status_code not in (302, 303) or not location:
        raise LoginError(f"the authorize endpoint answered HTTP {response.status_code} "
                         "without a redirect")
    code = code_from_redirect(location, state, config.orange.redirect_uri)
    await finish_login(config, code)


def run_login(config: Config, args: argparse.Namespace) -> int:
    state = secrets.token_urlsafe(16)
    redirect = config.orange.redirect_uri
    url = paths.authorize_url(config.orange.auth_url, config.orange.client_id, redirect, state)
    print("Open this address in a browser and sign in with the MAIN e-mail of the Orange "
          "contract:\n")
    print(f"  {url}\n", flush=True)
    if not args.no_browser:
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
    if is_local(redirect) and not args.paste:
        print(f"Waiting for the redirect on {redirect} (up to {args.timeout:g} s)…", flush=True)
        query = catch_redirect(redirect, args.timeout)
    else:
        print(f"After signing in, the browser goes to {redirect}?code=… (the page may not "
              "load: that is fine).")
        try:
            query = input("Paste that whole address here: ")
        except EOFError:
            raise LoginError("no URL was pasted") from None
    code = code_from_redirect(query, state, redirect)
    try:
        devices = asyncio.run(finish_login(config, code, args.insecure_token_file))
    except AuthError as exc:  # the code exchange was refused: a refused login, exit 1
        raise LoginError(f"login refused at the token step: {exc.message.split(': run')[0]}\n"
                         "Check client_id / client_secret and that redirect_uri is the one "
                         "declared for your app; then run `login` again.") from exc
    print(f"Signed in. Token file written to {config.orange.token_file} (mode 0600).")
    print("Decoders this account can see:" if devices else "This account sees no decoder yet.")
    for line in devices:
        print(f"  - {line}")
    sys.stdout.flush()
    return 0
