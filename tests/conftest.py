from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.app import Bridge
from bridge.config import Config
from bridge.simulator import Simulator, SimulatorSettings
from tests.helpers import Broker, Probe, bridge_config, in_ci, write_token_file


def _broker(folder: Path) -> Broker:
    try:
        return Broker(folder)
    except FileNotFoundError:
        if in_ci():
            pytest.fail("mosquitto is missing: CI must install it (apt-get install mosquitto)")
        pytest.skip("mosquitto is not installed")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One broker for the session; tests keep apart by unique base topics and client ids."""
    server = _broker(tmp_path_factory.mktemp("broker"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of the test's own, which it may restart."""
    server = _broker(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    with Simulator(SimulatorSettings(port=0)) as sim:
        yield sim


@pytest.fixture
async def probe(broker: Broker) -> AsyncIterator[Probe]:
    client = Probe(broker.port)
    yield client
    client.stop()


class BridgeRunner:
    """Starts bridges inside the test's event loop and stops them all at the end."""

    def __init__(self, simulator: Simulator, broker: Broker, folder: Path) -> None:
        self.simulator = simulator
        self.broker = broker
        self.folder = folder
        self.bridges: list[Bridge] = []

    def config(self, **overrides: object) -> Config:
        return bridge_config(self.simulator, self.broker.port, self.folder, **overrides)

    async def start(self, config: Config | None = None, *, token: bool = True,
                    wait_devices: bool = True) -> Bridge:
        config = config or self.config()
        if token:
            write_token_file(self.simulator, config.orange.token_file)
        bridge = Bridge(config)
        self.bridges.append(bridge)
        await bridge.start()
        if wait_devices:
            await asyncio.wait_for(bridge.link.connected.wait(), 10)
            await asyncio.wait_for(bridge.discovered.wait(), 10)
        return bridge

    async def stop_all(self) -> None:
        for bridge in self.bridges:
            if not bridge._stopping:
                await bridge.stop()


@pytest.fixture
async def runner(simulator: Simulator, broker: Broker, tmp_path: Path
                 ) -> AsyncIterator[BridgeRunner]:
    run = BridgeRunner(simulator, broker, tmp_path)
    yield run
    await run.stop_all()
