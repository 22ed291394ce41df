"""Built-in channel, app and remote-key tables (CATALOG.md) and name matching.

Matching ignores case, accents, spaces and punctuation; ``+`` reads as "plus" and a trailing
``-`` as "minus" (so ``vol+`` and ``vol-`` stay distinct). Config ``channels:`` / ``apps:``
entries add to the built-in maps or override an entry of the same name.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def normalize(name: str) -> str:
    """The matching key of a name: ``"France 2"``, ``"FRANCE_2"`` and ``"france2"`` agree."""
    folded = unicodedata.normalize("NFKD", name.strip().lower())
    text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    if text.endswith("-"):
        text = text[:-1] + "minus"
    text = text.replace("+", "plus")
    return _NOT_ALNUM.sub("", text)


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    epg_id: str
    number: int | None = None


@dataclass(frozen=True, slots=True)
class App:
    name: str
    app_id: str


# (remote number, name, epgId, aliases)
CHANNEL_TABLE: tuple[tuple[int, str, str, tuple[str, ...]], ...] = (
    (1, "TF1", "192", ()),
    (2, "France 2", "4", ()),
    (3, "France 3", "80", ()),
    (4, "France 4", "78", ()),
    (5, "France 5", "47", ()),
    (6, "M6", "118", ()),
    (7, "Arte", "111", ()),
    (8, "LCP / Public Sénat", "234", ("lcp", "public senat")),
    (9, "W9", "119", ()),
    (10, "TMC", "195", ()),
    (11, "TFX", "446", ("nt1",)),
    (12, "Gulli", "482", ()),
    (13, "BFM TV", "481", ()),
    (14, "CNEWS", "226", ("i tele",)),
    (15, "LCI", "112", ()),
    (16, "franceinfo", "2111", ("france info",)),
    (17, "CStar", "458", ()),
    (18, "T18", "4139", ()),
    (19, "Novo19", "160", ()),
    (20, "TF1 Séries Films", "1404", ("hd1",)),
    (21, "La Chaîne L'Équipe", "1401", ()),
    (22, "6ter", "1403", ()),
    (23, "RMC Story", "1402", ("numero 23",)),
    (24, "RMC Découverte", "1400", ()),
    (25, "RMC Life", "1399", ("cherie 25",)),
    (33, "TV5Monde", "205", ()),
    (34, "RTL9", "115", ()),
    (35, "Téva", "191", ()),
    (36, "Paris Première", "145", ()),
    (37, "TV Breizh", "225", ()),
    (40, "Canal+", "34", ("c+",)),
    (44, "Canal+ Sport", "35", ()),
    (47, "Canal+ Cinéma(s)", "33", ("canal+ cinema", "canal+ cinemas")),
    (50, "beIN Sports 1", "1290", ()),
    (51, "beIN Sports 2", "1304", ()),
    (52, "beIN Sports 3", "1335", ()),
    (90, "Disney Channel", "58", ()),
    (225, "France 24", "529", ()),
)

# (name, applicationId, aliases)
APP_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Netflix", "NETFLIX", ()),
    ("YouTube", "YOUTUBE", ()),
    ("Prime Video", "PRIME_VIDEO", ("amazon", "amazon prime")),
    ("Disney+", "DISNEY_PLUS", ("disney",)),
    ("myCANAL", "MYCANAL", ("canal app",)),
    ("Apple TV", "APPLE_TV", ("apple tv+",)),
    ("Max", "MAX", ("hbo",)),
    ("Paramount+", "PARAMOUNT_PLUS", ("paramount",)),
    ("France.tv", "FRANCE_TV", ()),
    ("TF1+", "TF1_PLUS", ()),
    ("M6+", "M6_PLUS", ("6play",)),
    ("Arte", "ARTE", ("arte app",)),
    ("Deezer", "DEEZER", ()),
    ("Spotify", "SPOTIFY", ()),
    ("Orange TV Replay", "REPLAY", ("replay",)),
    ("Orange VOD", "VOD", ("vod",)),
)

# canonical key (sent to the API) -> aliases
KEY_TABLE: dict[str, tuple[str, ...]] = {
    "POWER": ("power", "on_off"),
    **{str(d): (f"digit_{d}",) for d in range(10)},
    "CH_UP": ("ch+", "p+", "channel_up", "chan_up", "prog_up"),
    "CH_DOWN": ("ch-", "p-", "channel_down", "chan_down", "prog_down"),
    "VOL_UP": ("vol+", "volume_up", "volup"),
    "VOL_DOWN": ("vol-", "volume_down", "voldown"),
    "MUTE": ("mute",),
    "UP": ("arrow_up", "haut"),
    "DOWN": ("arrow_down", "bas"),
    "LEFT": ("arrow_left", "gauche"),
    "RIGHT": ("arrow_right", "droite"),
    "OK": ("ok", "enter", "select"),
    "BACK": ("back", "return", "retour"),
    "MENU": ("menu", "home"),
    "PLAY_PAUSE": ("play", "pause", "play_pause", "playpause"),
    "FFWD": ("ffwd", "forward", "fast_forward"),
    "REWIND": ("rewind", "rew", "fbwd"),
    "REC": ("rec", "record"),
    "VOD": ("vod",),
    "GUIDE": ("guide", "epg"),
}

KEY_NAMES: tuple[str, ...] = tuple(KEY_TABLE)
KEY_MODES: dict[str, str] = {
    "short": "SHORT", "long": "LONG", "press": "PRESS", "release": "RELEASE",
}


def _suggest(wanted: str, names: Iterable[str]) -> list[str]:
    """Up to three known names close to ``wanted``, spelled as the catalog writes them."""
    by_key: dict[str, str] = {}
    for name in names:
        by_key.setdefault(normalize(name), name)
    close = difflib.get_close_matches(normalize(wanted), list(by_key), n=3, cutoff=0.5)
    return [by_key[key] for key in close]


class Catalog:
    """Channel, app and key lookups: the built-in tables extended by the config."""

    def __init__(
        self,
        channels: Mapping[str, str] | None = None,
        apps: Mapping[str, str] | None = None,
    ) -> None:
        self.channels: list[Channel] = []
        self._channel_by_key: dict[str, Channel] = {}
        self._channel_by_number: dict[int, Channel] = {}
        for number, name, epg_id, aliases in CHANNEL_TABLE:
            channel = Channel(name, epg_id, number)
            self._add_channel(channel, aliases)
        for name, epg_id in (channels or {}).items():
            self._add_channel(Channel(name, str(epg_id)), ())

        self.apps: list[App] = []
        self._app_by_key: dict[str, App] = {}
        for name, app_id, aliases in APP_TABLE:
            self._add_app(App(name, app_id), aliases)
        for name, app_id in (apps or {}).items():
            self._add_app(App(name, str(app_id)), ())

        self._key_by_key: dict[str, str] = {}
        for canonical, aliases in KEY_TABLE.items():
            for alias in (canonical, *aliases):
                self._key_by_key.setdefault(normalize(alias), canonical)

    def _add_channel(self, channel: Channel, aliases: Iterable[str]) -> None:
        key = normalize(channel.name)
        old = self._channel_by_key.get(key)
        if old is not None:  # a config entry overrides the built-in one of the same name
            self.channels.remove(old)
            channel = Channel(channel.name, channel.epg_id, old.number)
            self._channel_by_key = {
                k: channel if v == old else v for k, v in self._channel_by_key.items()
            }
            if old.number is not None:
                self._channel_by_number[old.number] = channel
        self.channels.append(channel)
        self._channel_by_key[key] = channel
        for alias in aliases:
            self._channel_by_key.setdefault(normalize(alias), channel)
        if channel.number is not None:
            self._channel_by_number.setdefault(channel.number, channel)

    def _add_app(self, app: App, aliases: Iterable[str]) -> None:
        key = normalize(app.name)
        old = self._app_by_key.get(key)
        if old is not None:
            self.apps.remove(old)
            self._app_by_key = {
                k: app if v == old else v for k, v in self._app_by_key.items()
            }
        self.apps.append(app)
        self._app_by_key[key] = app
        for alias in aliases:
            self._app_by_key.setdefault(normalize(alias), app)

    def channel(self, name_or_number: str) -> Channel | None:
        """A channel by name, alias or remote number (``"1"`` is TF1)."""
        text = name_or_number.strip()
        if text.isdigit():
            return self._channel_by_number.get(int(text))
        return self._channel_by_key.get(normalize(text))

    def channel_by_epg(self, epg_id: str) -> Channel | None:
        return next((c for c in self.channels if c.epg_id == epg_id), None)

    def app(self, name: str) -> App | None:
        return self._app_by_key.get(normalize(name))

    def app_by_id(self, app_id: str) -> App | None:
        return next((a for a in self.apps if a.app_id == app_id), None)

    def key(self, name: str) -> str | None:
        """The canonical key name (``"vol+"`` -> ``"VOL_UP"``)."""
        return self._key_by_key.get(normalize(name))

    def suggest_channels(self, wanted: str) -> list[str]:
        return _suggest(wanted, (c.name for c in self.channels))

    def suggest_apps(self, wanted: str) -> list[str]:
        return _suggest(wanted, (a.name for a in self.apps))

    def suggest_keys(self, wanted: str) -> list[str]:
        return _suggest(wanted, KEY_NAMES)
