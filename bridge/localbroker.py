"""A private mosquitto on 127.0.0.1, for `demo`, the benchmark and the tests.

Not used by the daemon, which connects to whatever broker the config names.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found is None and Path("/usr/sbin/mosquitto").exists():
        return "/usr/sbin/mosquitto"  # Debian installs it outside a user's PATH
    return found


class LocalBroker:
    """mosquitto on a free port (or ``port``), which may be stopped and started again."""

    def __init__(self, folder: Path, *, port: int | None = None, persistent: bool = False,
                 listener: str = "") -> None:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed "
                                    "(Debian/Ubuntu: sudo apt-get install -y mosquitto)")
        self.binary = binary
        self.port = port or free_port()
        self.conf = folder / f"mosquitto-{self.port}.conf"
        self.log = folder / f"mosquitto-{self.port}.log"  # a file: a pipe nobody reads fills up
        store = (f"persistence true\npersistence_location {folder}/\n" if persistent
                 else "persistence false\n")
        if os.geteuid() == 0:  # as root mosquitto would switch to its own user: keep root,
            store += "user root\n"  # so it can write its store in our folder
        # `listener` adds options to the listener (password file, TLS files)
        listener = listener or "allow_anonymous true\n"
        self.conf.write_text(f"per_listener_settings true\nlistener {self.port} 127.0.0.1\n"
                             f"{listener}{store}set_tcp_nodelay true\n"
                             "max_queued_messages 100000\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        # its own session: Ctrl+C in a terminal reaches the demo, which then stops the broker
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                            stdout=subprocess.DEVNULL, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.process.poll() is not None:
                err = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"mosquitto did not start: {' / '.join(err)}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen within {timeout:g} s")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
