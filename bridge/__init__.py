"""orangetv2mqtt: an MQTT bridge for Orange TV decoders (cloud API "Pilotage Décodeur TV")."""

__version__ = "0.1.0"
