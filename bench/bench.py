"""orangetv2mqtt benchmark: startup, idle cost, latency, throughput, CPU and memory.

Starts mosquitto (set_tcp_nodelay true) on a free port, the simulator (instant answers, 20
decoders) in its own process, and the bridge with `orangetv2mqtt run`, then drives it over MQTT
like a flow would. Prints one JSON object per run (and a summary of medians with --runs > 1).
Every result is checked: a run with a lost, failed or duplicate result is reported failed.

    python bench/bench.py [--runs 3] [--soak 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bridge.localbroker import LocalBroker, free_port, port_open

ROOT = Path(__file__).resolve().parents[1]
BASE = "benchtv"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of the process in seconds: nanoseconds from schedstat, else clock ticks."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def memory_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Client:
    """The flow's side: publishes commands, collects results by id."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, list[dict[str, Any]]] = {}
        self.waiters: dict[str, threading.Event] = {}
        self.retained: dict[str, bytes] = {}
        self.changed = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}",
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.on_message = self._on_message
        self.client.on_socket_open = lambda c, u, s: s.setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(f"{BASE}/+/result", 1), (f"{BASE}/bridge/#", 1)])

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.endswith("/result"):
            result = json.loads(msg.payload)
            key = str(result.get("id"))
            with self.lock:
                self.results.setdefault(key, []).append(result)
                event = self.waiters.get(key)
            if event is not None:
                event.set()
        else:
            with self.changed:
                self.retained[msg.topic] = bytes(msg.payload)
                self.changed.notify_all()

    def wait_topic(self, topic: str, check: Any, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(
                lambda: topic in self.retained and check(self.retained[topic]), timeout)

    def send(self, device: str, command_id: str, epg: str) -> threading.Event:
        event = threading.Event()
        with self.lock:
            self.waiters[command_id] = event
        payload = json.dumps({"action": "zap", "epg_id": epg, "id": command_id})
        self.client.publish(f"{BASE}/{device}/set", payload, qos=1)
        return event

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def check(client: Client, ids: list[str]) -> dict[str, int]:
    with client.lock:
        lost = sum(1 for i in ids if i not in client.results)
        duplicates = sum(1 for i in ids if len(client.results.get(i, [])) > 1)
        failed = sum(1 for i in ids if i in client.results and not client.results[i][0]["ok"])
    return {"lost": lost, "failed": failed, "duplicates": duplicates}


def run_load(client: Client, devices: list[str], count: int, inflight: int, prefix: str,
             pid: int, rss_at: int | None = None) -> dict[str, Any]:
    slots = threading.Semaphore(inflight)
    ids = [f"{prefix}{n}" for n in range(count)]
    done = threading.Event()
    remaining = [count]
    lock = threading.Lock()
    rss_mark: dict[str, float] = {}

    def finished(_: Any = None) -> None:
        slots.release()
        with lock:
            remaining[0] -= 1
            if remaining[0] == 0:
                done.set()

    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for n, command_id in enumerate(ids):
        slots.acquire()
        event = client.send(devices[n % len(devices)], command_id, str(100_000 + n % 9_000))
        threading.Thread(target=lambda e=event: (e.wait(60), finished()), daemon=True).start()
        if rss_at is not None and n == rss_at:
            rss_mark["rss_mb_at_mark"] = memory_mb(pid)
    done.wait(120)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    return {"commands": count, "seconds": round(seconds, 3),
            "per_s": round(count / seconds, 1), "cpu_ms_per_command": round(cpu * 1000 / count, 3),
            **check(client, ids), **rss_mark}


def one_run(args: argparse.Namespace) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="otv-bench-"))
    mosquitto = LocalBroker(folder)
    mosquitto.start()
    mqtt_port, api_port = mosquitto.port, free_port()
    token = folder / "token.json"
    sim = subprocess.Popen([sys.executable, "-m", "bridge", "simulate", "--port", str(api_port),
                            "--decoders", str(args.decoders), "--token-file", str(token)],
                           stdout=subprocess.DEVNULL, cwd=ROOT)
    bridge = None
    client = None
    try:
        while not port_open(api_port):
            time.sleep(0.02)
        while not token.exists():
            time.sleep(0.02)
        httpx.post(f"http://127.0.0.1:{api_port}/_sim/faults",
                   json={"power": {"stb-0002": "ON"}})  # every decoder awake
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump({
            "mqtt": {"port": mqtt_port, "base_topic": BASE, "client_id": "bench-bridge"},
            "orange": {"api_url": f"http://127.0.0.1:{api_port}",
                       "auth_url": f"http://127.0.0.1:{api_port}/oauth", "client_id": "demo",
                       "client_secret": "demo", "token_file": str(token),
                       # the simulator is not Orange: lift the client-side cap for the bench
                       "rate_limit": {"per_minute": 1_000_000, "burst": 100_000}},
            "commands": {"ttl": 300, "queue_size": 10_000},
            "logging": {"level": "warning"},
        }))
        client = Client(mqtt_port)
        started = time.perf_counter()
        bridge = subprocess.Popen([sys.executable, "-m", "bridge", "run", "-c", str(config)],
                                  cwd=ROOT)
        online = client.wait_topic(f"{BASE}/bridge/state", lambda p: p == b"online", 30)
        listed = client.wait_topic(f"{BASE}/bridge/devices",
                                   lambda p: len(json.loads(p)) == args.decoders, 30)
        startup = time.perf_counter() - started
        if not (online and listed):
            raise RuntimeError("the bridge did not come online with every decoder")
        listing = json.loads(client.retained[f"{BASE}/bridge/devices"])
        devices = [d["friendly_name"] for d in listing]
        time.sleep(2)  # let start-up work (status calls, HA discovery) settle
        pid = bridge.pid
        cpu0 = cpu_seconds(pid)
        time.sleep(10)
        idle = {"rss_mb": round(memory_mb(pid), 1),
                "cpu_s_per_10s": round(cpu_seconds(pid) - cpu0, 3)}
        result: dict[str, Any] = {"startup_s": round(startup, 3), "idle": idle}

        if args.soak:
            soak = run_load(client, devices, args.soak, args.inflight, "s", pid,
                            rss_at=min(10_000, args.soak - 1))
            soak["rss_mb_end"] = round(memory_mb(pid), 1)
            soak["rss_growth_mb"] = round(soak["rss_mb_end"] - soak.get("rss_mb_at_mark", 0), 1)
            result["soak"] = soak
            result["ok"] = not (soak["lost"] or soak["failed"] or soak["duplicates"])
            return result

        latencies = []
        for n in range(args.latency_n):
            t = time.perf_counter()
            if not client.send(devices[0], f"l{n}", str(100_000 + n)).wait(10):
                break
            latencies.append((time.perf_counter() - t) * 1000)
        lat_check = check(client, [f"l{n}" for n in range(args.latency_n)])
        result["latency_ms"] = {
            "n": len(latencies),
            "p50": round(percentile(latencies, 0.5), 3),
            "p90": round(percentile(latencies, 0.9), 3),
            "p99": round(percentile(latencies, 0.99), 3),
            "max": round(max(latencies), 3),
            **lat_check,
        }
        result["throughput"] = run_load(client, devices, args.throughput_n, args.inflight,
                                        "t", pid)
        result["peak_rss_mb"] = round(memory_mb(pid, "VmHWM"), 1)
        bad = [result["throughput"][k] + lat_check[k] for k in ("lost", "failed", "duplicates")]
        result["ok"] = not any(bad) and len(latencies) == args.latency_n
        if not result["ok"]:
            result["throughput"]["per_s"] = None  # a lossy run is a failure, not a throughput
        return result
    finally:
        if client is not None:
            client.stop()
        for process in (bridge, sim):
            if process is not None:
                process.terminate()
                process.wait(15)
        mosquitto.stop()


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "httpx": httpx.__version__, "paho": paho.__version__ if hasattr(paho, "__version__")
            else "2"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--decoders", type=int, default=20)
    parser.add_argument("--latency-n", type=int, default=500)
    parser.add_argument("--throughput-n", type=int, default=5000)
    parser.add_argument("--inflight", type=int, default=200)
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="instead of the usual run: N commands, RSS growth after the 10,000th")
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        result = {"machine": machine(), **one_run(args)}
        print(json.dumps(result), flush=True)
        runs.append(result)
    if args.runs > 1 and not args.soak:
        def median(path: list[str]) -> float | None:
            values = []
            for run in runs:
                value: Any = run
                for key in path:
                    value = value.get(key) if isinstance(value, dict) else None
                if isinstance(value, int | float):
                    values.append(value)
            return round(statistics.median(values), 3) if values else None
        summary = {"summary": f"median of {args.runs} runs",
                   "startup_s": median(["startup_s"]),
                   "idle_rss_mb": median(["idle", "rss_mb"]),
                   "idle_cpu_s_per_10s": median(["idle", "cpu_s_per_10s"]),
                   **{f"latency_{k}_ms": median(["latency_ms", k])
                      for k in ("p50", "p90", "p99", "max")},
                   "throughput_per_s": median(["throughput", "per_s"]),
                   "cpu_ms_per_command": median(["throughput", "cpu_ms_per_command"]),
                   "peak_rss_mb": median(["peak_rss_mb"]),
                   "all_ok": all(r["ok"] for r in runs)}
        print(json.dumps(summary), flush=True)
    return 0 if all(r["ok"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
