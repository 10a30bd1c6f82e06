"""Publishing to an MQTT broker in Frigate's shapes, so Home Assistant and Frigate tooling understand it.

Topics, with ``P`` the configured ``topic_prefix``:

* ``P/available``: ``online`` (retained) once connected; ``offline`` as the last will (a crash, a
  lost connection) and on shutdown.
* ``P/events``: ``{"type": "new" | "update" | "end", "before": {...}, "after": {...}}``; the event
  objects hold ``id, camera, label, score, top_score, start_time, end_time`` (null until the end),
  ``has_snapshot, has_clip`` (see :func:`event_payload`).
* ``P/<camera>/anomaly``: ``ON`` while an event is open, ``OFF`` otherwise (retained).
* ``homeassistant/binary_sensor/P_<camera>/config`` (retained): Home Assistant's MQTT discovery, one
  binary sensor per camera, unavailable when ``P/available`` says ``offline``.

paho's network loop runs on its own thread and reconnects by itself; a broker that is down never
blocks scoring (messages published while disconnected are dropped by paho after its queue fills).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Callable

from vigil.serve.config import MqttConfig


def event_payload(ev: dict) -> dict:
    """The event as Frigate's ``events`` topic carries it (a subset of its fields, same names)."""
    return {"id": ev["id"], "camera": ev["camera"], "label": ev["label"], "score": round(float(ev["score"]), 4),
            "top_score": round(float(ev["top_score"]), 4), "start_time": ev["start_time"],
            "end_time": ev["end_time"], "has_snapshot": bool(ev["has_snapshot"]), "has_clip": bool(ev["has_clip"]),
            "threshold": ev["threshold"]}


class MqttPublisher:
    """One connection for the whole service; :meth:`close` publishes ``offline`` and disconnects."""

    def __init__(self, cfg: MqttConfig, cameras: list[str], *,
                 log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)):
        import paho.mqtt.client as mqtt

        self.cfg, self.cameras, self.log = cfg, list(cameras), log
        p = cfg.topic_prefix
        self.available, self.events_topic = f"{p}/available", f"{p}/events"
        self.connected = threading.Event()
        self.closing = False
        self._state: dict[str, str] = {c: "OFF" for c in self.cameras}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vigil-{p}", clean_session=True)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password)
        self.client.will_set(self.available, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.connect_async(cfg.host, cfg.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            self.log(f"vigil: mqtt {self.cfg.host}:{self.cfg.port}: connection refused ({reason})")
            return
        for cam in self.cameras:                     # discovery first, so the sensors exist when state comes
            client.publish(self.discovery_topic(cam), json.dumps(self.discovery(cam)), qos=1, retain=True)
            client.publish(self.state_topic(cam), self._state[cam], qos=1, retain=True)
        client.publish(self.available, "online", qos=1, retain=True)
        if not self.connected.is_set():
            self.log(f"vigil: mqtt {self.cfg.host}:{self.cfg.port}: connected")
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        if self.connected.is_set() and not self.closing:
            self.log(f"vigil: mqtt {self.cfg.host}:{self.cfg.port}: disconnected ({reason}); reconnecting")
        self.connected.clear()

    def state_topic(self, camera: str) -> str:
        return f"{self.cfg.topic_prefix}/{camera}/anomaly"

    def discovery_topic(self, camera: str) -> str:
        return f"{self.cfg.discovery_prefix}/binary_sensor/{self.cfg.topic_prefix}_{camera}/config"

    def discovery(self, camera: str) -> dict:
        """Home Assistant's MQTT discovery document for the camera's anomaly binary sensor."""
        uid = f"{self.cfg.topic_prefix}_{camera}"
        return {"name": "Anomaly", "unique_id": f"{uid}_anomaly", "object_id": f"{uid}_anomaly",
                "state_topic": self.state_topic(camera), "payload_on": "ON", "payload_off": "OFF",
                "availability_topic": self.available, "payload_available": "online",
                "payload_not_available": "offline", "device_class": "problem",
                "device": {"identifiers": [uid], "name": f"{camera} (vigil)", "manufacturer": "vigil",
                           "model": "anomaly detector"}}

    # --- what the cameras call --------------------------------------------------------------------
    def event(self, kind: str, before: dict | None, after: dict) -> None:
        """``kind``: new, update or end; ``before``/``after``: event rows (store columns)."""
        msg = {"type": kind, "before": event_payload(before or after), "after": event_payload(after)}
        self.client.publish(self.events_topic, json.dumps(msg), qos=1)

    def state(self, camera: str, on: bool) -> None:
        self._state[camera] = "ON" if on else "OFF"
        self.client.publish(self.state_topic(camera), self._state[camera], qos=1, retain=True)

    def close(self, timeout: float = 5.0) -> None:
        """``offline`` (retained), waited for up to ``timeout`` seconds, then disconnect."""
        self.closing = True
        if self.connected.is_set():
            info = self.client.publish(self.available, "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()
