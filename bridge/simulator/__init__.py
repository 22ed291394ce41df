"""``orangetv2mqtt simulate``: our model of Orange's API (SPEC section 1) for tests and flows."""

from bridge.simulator.oauth import OAuthSettings
from bridge.simulator.server import Simulator, SimulatorSettings

__all__ = ["OAuthSettings", "Simulator", "SimulatorSettings"]
