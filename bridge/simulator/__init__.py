"""``orangetv2mqtt simulate``: our model of Orange's API (SPEC section 1) for tests and flows.

Imported lazily: the daemon's command line only needs the simulator's argument definitions,
and its HTTP server modules would cost the daemon memory for nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.simulator.oauth import OAuthSettings
    from bridge.simulator.server import Simulator, SimulatorSettings

__all__ = ["OAuthSettings", "Simulator", "SimulatorSettings"]


def __getattr__(name: str) -> Any:
    if name == "OAuthSettings":
        from bridge.simulator.oauth import OAuthSettings

        return OAuthSettings
    if name in ("Simulator", "SimulatorSettings"):
        from bridge.simulator import server

        return getattr(server, name)
    raise AttributeError(name)
