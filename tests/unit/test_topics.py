from __future__ import annotations

from bridge.discovery import name_devices
from bridge.orange.api import ApiDevice
from bridge.topics import Inbound, Topics, is_publishable, is_valid_filter, slug


def test_slug() -> None:
    assert slug("Decodeur Orange 2") == "decodeur_orange_2"
    assert slug("Décodeur Télé #1/+") == "decodeur_tele_1"
    assert slug("  ") == "decoder"


def test_parse_inbound() -> None:
    topics = Topics("orangetv")
    assert topics.parse("orangetv/salon/set") == Inbound("command", "salon")
    assert topics.parse("orangetv/salon/zap/set") == Inbound("command", "salon", action="zap")
    assert topics.parse("orangetv/all/set") == Inbound("command", "all")
    assert topics.parse("orangetv/salon/get") == Inbound("get", "salon")
    assert topics.parse("orangetv/bridge/request/discover") == Inbound("request",
                                                                        request="discover")
    assert topics.parse("orangetv/salon/result").kind == "other"
    assert topics.parse("other/salon/set").kind == "other"
    assert topics.parse("orangetv/bridge/set").kind == "other"


def test_filters_and_publishable() -> None:
    assert is_valid_filter("a/+/b") and is_valid_filter("a/#")
    assert not is_valid_filter("a/#/b") and not is_valid_filter("a/b+") and not is_valid_filter("")
    assert is_publishable("a/b") and not is_publishable("a/+") and not is_publishable("a//b")
    assert not is_publishable("a/\0")


def test_friendly_names_unique_and_reserved() -> None:
    found = [ApiDevice("id1", "Decodeur Orange", "TV5", None),
             ApiDevice("id2", "Decodeur Orange", "TV5", None),
             ApiDevice("id3", "Bridge", "TV5", None),
             ApiDevice("id4", "Salon", "TV5", None),
             ApiDevice("id5", "Chambre", "TV5", None)]
    names = [d.friendly_name for d in name_devices(found, {"id5": "salon"})]
    assert names == ["decodeur_orange", "decodeur_orange_2", "bridge_2", "salon_2", "salon"]
