"""Bridge: builds the parts, starts them in order, stops them in reverse.

One asyncio loop in one thread owns all mutable state: the device registry, the workers, the
state cache and the token manager. paho callbacks arrive on that same loop (see mqtt.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub

from bridge import __version__
from bridge.catalog import Catalog
from bridge.commands import MAX_PAYLOAD_BYTES, CommandParser
from bridge.config import Config, Trigger
from bridge.discovery import DiscoveryLoop, name_devices
from bridge.errors import ApiError, AuthError, BridgeError, CommandError
from bridge.executor import Outcome, error_info, execute
from bridge.homeassistant import STALE_WINDOW, DiscoveryBuilder, HomeAssistant
from bridge.models import Command, Device, ErrorInfo, Result, iso_now
from bridge.mqtt import Message, MqttLink
from bridge.orange.api import OrangeApi, new_http_client
from bridge.orange.auth import TokenManager, TokenStore
from bridge.state import DeviceState, state_json
from bridge.tokens import TokenTimers
from bridge.topics import Inbound, Topics
from bridge.worker import DeviceWorker, Pending, ReplyTo

_LOGGER = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0  # seconds in-flight calls get on SIGTERM
_API_HEALTH = {"rate_limited": "rate_limited", "api_unavailable": "unreachable",
               "timeout": "unreachable"}


@dataclass(slots=True)
class _Entry:
    device: Device
    worker: DeviceWorker
    state: DeviceState
    refreshing: bool = False


class Bridge:
    def __init__(self, config: Config, *, insecure_token_file: bool = False) -> None:
        self.config = config
        self.topics = Topics(config.mqtt.base_topic)
        self.catalog: Catalog = config.catalog()
        self.parser = CommandParser(self.catalog, config.macros)
        self.http = new_http_client(config.orange)
        self.tokens = TokenManager(
            config.orange, self.http,
            TokenStore(config.orange.token_file, insecure=insecure_token_file),
            on_change=self._auth_changed)
        self.api = OrangeApi(config.orange, self.http, self.tokens)
        self.link = MqttLink(config.mqtt, will_topic=self.topics.bridge_state,
                             on_message=self._on_message, on_connected=self._republish)
        self.discovery = DiscoveryLoop(self._discover, config.discovery.interval)
        self.ha: HomeAssistant | None = None
        if config.homeassistant.enabled:
            builder = DiscoveryBuilder(self.topics, config.homeassistant.prefix, self.catalog)
            self.ha = HomeAssistant(
                builder, lambda topic, payload, retain: self.link.publish(
                    topic, payload, retain=retain), self._republish)
        self.entries: dict[str, _Entry] = {}  # by deviceId
        self.segments: dict[str, str] = {}  # friendly name and deviceId -> deviceId
        self.status_offered = True
        self.api_health = "ok"
        self.last_error: dict[str, Any] | None = None
        self.discovered = asyncio.Event()
        self._info_sent: dict[str, Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.token_timers = TokenTimers(self.tokens)
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self.tokens.load()
        except AuthError as exc:
            _LOGGER.error("login required: %s", exc.message)
        for topic_filter in self.topics.subscriptions:
            self.link.subscribe(topic_filter, retain_as_published=True)
        for trigger_filter in {t.topic for t in self.config.triggers}:
            self.link.subscribe(trigger_filter)
        if self.ha is not None:
            self.link.subscribe(self.ha.status_topic)
            self.link.subscribe(self.ha.config_filter)  # until stale configs are cleared
        await self.link.start()
        self.discovery.start()
        self.token_timers.start()

    async def stop(self) -> None:
        self._stopping = True
        await self.discovery.stop()
        self.token_timers.stop()
        if self.ha is not None:
            self.ha.stop()
        shutting = ApiError("the bridge is shutting down; command not sent",
                            code="api_unavailable")
        await asyncio.gather(*(e.worker.stop(SHUTDOWN_GRACE, shutting)
                               for e in self.entries.values()))
        for task in list(self._tasks):
            task.cancel()
        for entry in self.entries.values():
            self.link.publish(self.topics.availability(entry.device.friendly_name), "offline",
                              retain=True)
        self.link.publish(self.topics.bridge_state, "offline", retain=True)
        await self.link.stop()
        await self.http.aclose()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publishing -----------------------------------------------------------------------

    def _republish(self) -> None:
        """Everything retained, after every (re)connect and on request."""
        self.link.publish(self.topics.bridge_state, "online", retain=True)
        self._publish_info(force=True)
        self._publish_devices()
        if self.ha is not None:  # discovery first, then the states it points at
            self.ha.publish_all(e.device for e in self.entries.values())
        for entry in self.entries.values():
            self._publish_state(entry)
            self.link.publish(self.topics.availability(entry.device.friendly_name), "online",
                              retain=True)

    def _info(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "auth": self.tokens.state,
            "api": self.api_health,
            "api_url": self.config.orange.api_url,
            "devices": len(self.entries),
            "base_topic": self.topics.base,
            "last_error": self.last_error,
        }

    def _publish_info(self, force: bool = False) -> None:
        info = self._info()
        if force or info != self._info_sent:
            self._info_sent = info
            self.link.publish(self.topics.bridge_info, info, retain=True)

    def _publish_devices(self) -> None:
        self.link.publish(self.topics.bridge_devices,
                          [e.device.to_json() for e in self.entries.values()], retain=True)

    def _publish_state(self, entry: _Entry) -> None:
        self.link.publish(self.topics.state(entry.device.friendly_name),
                          state_json(entry.device, entry.state, self.catalog), retain=True)

    def _publish_result(self, result: Result, reply: ReplyTo) -> None:
        payload = result.to_json()
        self.link.publish(self.topics.result(reply.segment), payload)
        if reply.response_topic:
            with contextlib.suppress(BridgeError):  # a bad response topic is the caller's
                self.link.publish(reply.response_topic, payload,
                                  correlation_data=reply.correlation_data)

    def _auth_changed(self) -> None:
        if self.tokens.state == "login_required":
            _LOGGER.error("login required: %s", self.tokens.last_error)
        else:
            self.discovery.trigger()
        self._publish_info()

    def _note_error(self, error: ErrorInfo | None) -> None:
        """Track API health for bridge/info from each outcome."""
        if error is None:
            self.api_health = "ok"
        else:
            self.api_health = _API_HEALTH.get(error.code, self.api_health)
            self.last_error = {"code": error.code, "message": error.message, "at": iso_now()}
        self._publish_info()

    # -- discovery ------------------------------------------------------------------------

    async def _discover(self) -> bool:
        try:
            found = await self.api.fetch_devices()
        except BridgeError as exc:
            _LOGGER.warning("discovery failed: %s", exc.message)
            self._note_error(error_info(exc))
            return False
        devices = name_devices(found, self.config.devices)
        current = {d.device_id: d for d in devices}
        for device_id in [d for d in self.entries if d not in current]:
            gone = self.entries.pop(device_id)
            _LOGGER.info("decoder %s (%s) left discovery", gone.device.friendly_name, device_id)
            self.link.publish(self.topics.availability(gone.device.friendly_name), "offline",
                              retain=True)
            if self.ha is not None:
                self.ha.remove_device(device_id)
            self._spawn(gone.worker.stop(0, CommandError(
                "the decoder left discovery", code="unknown_device")), "retire")
        for device in devices:
            entry = self.entries.get(device.device_id)
            if entry is None:
                entry = self._add(device)
                _LOGGER.info("decoder %s (%s) discovered", device.friendly_name, device.device_id)
                if self.ha is not None:
                    self.ha.publish_device(device)
            elif entry.device != device:
                if entry.device.friendly_name != device.friendly_name:  # renamed in the API
                    self.link.publish(self.topics.availability(entry.device.friendly_name),
                                      "offline", retain=True)
                entry.device = device
                entry.worker.device = device
                if self.ha is not None:
                    self.ha.publish_device(device)
            self.link.publish(self.topics.availability(device.friendly_name), "online",
                              retain=True)
            self._refresh_state(entry)
        self.segments = {}
        for entry in self.entries.values():
            self.segments[entry.device.device_id] = entry.device.device_id
        for entry in self.entries.values():
            self.segments[entry.device.friendly_name] = entry.device.device_id
        self._note_error(None)
        self._publish_devices()
        if self.ha is not None and self.ha.collecting and not self.discovered.is_set():
            asyncio.get_running_loop().call_later(STALE_WINDOW, self._clear_stale_configs)
        self.discovered.set()
        return True

    def _clear_stale_configs(self) -> None:
        if self.ha is not None and not self._stopping:
            self.ha.clear_stale()
            self.link.unsubscribe(self.ha.config_filter)

    def _add(self, device: Device) -> _Entry:
        worker = DeviceWorker(device, queue_size=self.config.commands.queue_size,
                              run=self._run, publish=self._publish_result, done=self._done)
        entry = _Entry(device, worker, DeviceState())
        self.entries[device.device_id] = entry
        worker.start()
        return entry

    # -- state ----------------------------------------------------------------------------

    def _refresh_state(self, entry: _Entry) -> None:
        """Ask the status call in the background, one at a time per decoder."""
        if not self.status_offered:
            self._publish_state(entry)
            return
        if not entry.refreshing:
            entry.refreshing = True
            self._spawn(self._fetch_status(entry), f"status-{entry.device.device_id}")

    async def _fetch_status(self, entry: _Entry) -> None:
        try:
            status = await self.api.fetch_status(entry.device.device_id)
        except BridgeError as exc:
            _LOGGER.info("%s: status unavailable: %s", entry.device.friendly_name, exc.message)
            status = None
        else:
            if status is None and self.status_offered:
                _LOGGER.info("the API offers no status call: working on assumed state")
                self.status_offered = False
        finally:
            entry.refreshing = False
        if status is not None:
            entry.state = entry.state.with_status(status)
        self._publish_state(entry)

    def _done(self, device: Device, pending: Pending, outcome: Outcome) -> None:
        entry = self.entries.get(device.device_id)
        self._note_error(outcome.result.error)
        if entry is None or not outcome.done:
            return
        state = entry.state
        for step in outcome.done:
            state = state.after(step)
        entry.state = DeviceState(state.power, state.epg_id, state.app_id,
                                  pending.command.describe(), iso_now())
        self._publish_state(entry)
        uncertain = any(s.action in ("key", "power") for s in outcome.done)
        if uncertain and entry.worker.idle:
            self._refresh_state(entry)

    async def _run(self, device: Device, pending: Pending) -> Outcome:
        return await execute(self.api, device, pending.command, segment=pending.reply.segment,
                             arrived=pending.arrived, ttl=self.config.commands.ttl)

    # -- inbound --------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        inbound = self.topics.parse(message.topic)
        if inbound.kind == "command":
            self._on_command(inbound, message)
        elif inbound.kind == "get":
            self._on_get(inbound.segment)
        elif inbound.kind == "request":
            self._on_request(inbound.request, message)
        for trigger in self.config.triggers:
            if topic_matches_sub(trigger.topic, message.topic):
                self._on_trigger(trigger, message)
        if self.ha is not None and inbound.kind == "other":
            if message.topic == self.ha.status_topic:
                self.ha.on_status(message.payload)
            elif self.ha.collecting and message.topic.endswith("/config"):
                self.ha.on_config(message.topic, message.payload)

    def _on_command(self, inbound: Inbound, message: Message) -> None:
        reply = ReplyTo(inbound.segment, message.response_topic, message.correlation_data)
        if message.retain:
            if message.payload:  # an empty retained message only clears the topic
                command_id, action = _peek(message.payload)
                self._refuse(reply, command_id, CommandError(
                    "retained message: commands are never run from retained messages "
                    "(clear it by publishing an empty retained message to this topic)"),
                    action=inbound.action or action)
            return
        try:
            command = self.parser.parse(message.payload, inbound.action)
        except CommandError as exc:
            command_id, action = _peek(message.payload)
            self._refuse(reply, command_id, exc, action=inbound.action or action)
            return
        self.submit(inbound.segment, command, reply)

    def submit(self, segment: str, command: Command, reply: ReplyTo) -> None:
        """Route a valid command to its decoder's queue (or to every decoder for ``all``)."""
        if segment == "all":
            for each in self.entries.values():
                each.worker.submit(Pending(command, ReplyTo(each.device.friendly_name)))
            return
        device_id = self.segments.get(segment)
        entry = self.entries.get(device_id) if device_id else None
        if entry is None:
            if self.tokens.state == "login_required":
                error: BridgeError = AuthError(self.tokens.last_error or "login required")
            else:
                known = ", ".join(sorted(e.device.friendly_name for e in self.entries.values()))
                error = CommandError(f"no decoder '{segment}' (known: {known or 'none yet'})",
                                     code="unknown_device")
            self._refuse(reply, command.id, error, action=command.action)
            return
        entry.worker.submit(Pending(command, reply))

    def _refuse(self, reply: ReplyTo, command_id: str | None, exc: BridgeError,
                action: str | None = None) -> None:
        _LOGGER.warning("%s: command refused: %s: %s", reply.segment, exc.code, exc.message,
                        extra={"device": reply.segment})
        device_id = self.segments.get(reply.segment)
        self._publish_result(Result(id=command_id, device=reply.segment, device_id=device_id,
                                    action=action, ok=False, error=error_info(exc)), reply)

    def _on_get(self, segment: str) -> None:
        device_id = self.segments.get(segment)
        if device_id is not None and device_id in self.entries:
            self._refresh_state(self.entries[device_id])

    def _on_request(self, name: str, message: Message) -> None:
        request_id, _ = _peek(message.payload)
        if name == "discover":
            self._spawn(self._answer_discover(request_id), "request-discover")
        elif name == "republish":
            self._republish()
            self.link.publish(self.topics.response(name), {"id": request_id, "ok": True})
        else:
            self.link.publish(self.topics.response(name), {
                "id": request_id, "ok": False,
                "error": {"code": "invalid_command", "message": f"unknown request '{name}'",
                          "retryable": False}})

    async def _answer_discover(self, request_id: str | None) -> None:
        ok = await self._discover()
        response: dict[str, Any] = {"id": request_id, "ok": ok}
        if ok:
            response["devices"] = [e.device.to_json() for e in self.entries.values()]
        else:
            response["error"] = (self.last_error or {"code": "api_unavailable",
                                                     "message": "discovery failed"})
            response["error"] = {**response["error"], "retryable": True}
            response["error"].pop("at", None)
        self.link.publish(self.topics.response("discover"), response)

    def _on_trigger(self, trigger: Trigger, message: Message) -> None:
        if message.retain:
            return  # a retained button state must not replay at every start
        text = message.payload.decode("utf-8", errors="replace").strip()
        if trigger.payload is not None and text != trigger.payload:
            return
        if trigger.match is not None:
            try:
                data = json.loads(text)
            except ValueError:
                return
            if not isinstance(data, dict) or any(
                data.get(k) != v for k, v in trigger.match.items()
            ):
                return
        _LOGGER.info("trigger %s -> %s: %s", message.topic, trigger.device,
                     trigger.command.describe())
        self.submit(trigger.device, trigger.command, ReplyTo(trigger.device))


def _peek(payload: bytes) -> tuple[str | None, str | None]:
    """The ``id`` and ``action`` of a payload we refuse, when readable, to echo in the result.

    Oversized payloads are not read at all (SPEC: refused unread, no id echoed).
    """
    if len(payload) > MAX_PAYLOAD_BYTES or not payload.lstrip().startswith(b"{"):
        return None, None
    try:
        data = json.loads(payload)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    command_id, action = data.get("id"), data.get("action")
    return (command_id if isinstance(command_id, str) and len(command_id) <= 64 else None,
            action if isinstance(action, str) and len(action) <= 32 else None)

