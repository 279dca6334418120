"""Optional MQTT publication (paho-mqtt): one JSON message per part, and the station's status.

Topics (``<prefix>`` defaults to ``magspect/<station name>``):

- ``<prefix>/result`` (QoS 1): ``{"serial", "seq", "lane", "verdict", "reject", "fail_safe",
  "recipe", "latency_ms", "reasons": [...], "created_at"}`` per part, in decision order;
- ``<prefix>/status`` (QoS 0, retained): the station snapshot every ``status_period_s``; the
  broker's last will sets it to ``{"state": "Offline"}`` if the station dies.

MQTT is for dashboards and MES; the PLC's reject signal is OPC UA (or hard-wired I/O).
"""

from __future__ import annotations

import json
import threading
from typing import Any


class MqttOutput:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883, *, topic_prefix: str | None = None,
                 status_period_s: float = 1.0, client_id: str | None = None) -> None:
        self.host, self.port = host, port
        self.topic_prefix = topic_prefix
        self.status_period_s = status_period_s
        self.client_id = client_id
        self._client: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.station: Any = None

    def start(self, station: Any) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ModuleNotFoundError as exc:
            raise RuntimeError("MQTT output needs paho-mqtt: pip install paho-mqtt") from exc
        self.station = station
        self.topic_prefix = self.topic_prefix or f"magspect/{station.station_name}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id or "")
        c.will_set(f"{self.topic_prefix}/status", json.dumps({"state": "Offline"}), qos=1, retain=True)
        c.connect_async(self.host, self.port)  # the station starts even while the broker is away
        c.loop_start()
        self._client = c
        self._thread = threading.Thread(target=self._status_loop, name="edge-mqtt", daemon=True)
        self._thread.start()

    def _status_loop(self) -> None:
        while not self._stop.wait(self.status_period_s):
            self._publish_status()

    def _publish_status(self) -> None:
        self._client.publish(f"{self.topic_prefix}/status", json.dumps(self.station.snapshot()), qos=0, retain=True)

    def publish(self, d: Any) -> None:
        r = d.result
        msg = {"serial": d.serial, "seq": d.seq, "lane": d.lane, "verdict": r.verdict.value, "reject": d.reject,
               "fail_safe": d.fail_safe, "recipe": r.spec.id if r.spec else None,
               "latency_ms": round(d.latency_ms, 1), "reasons": [x.message for x in r.reasons],
               "created_at": r.created_at.isoformat()}
        self._client.publish(f"{self.topic_prefix}/result", json.dumps(msg), qos=1)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._client is not None:
            info = self._client.publish(f"{self.topic_prefix}/status", json.dumps(self.station.snapshot()),
                                        qos=1, retain=True)
            if self._client.is_connected():
                try:
                    info.wait_for_publish(2.0)
                except (RuntimeError, ValueError):
                    pass
            self._client.disconnect()
            self._client.loop_stop()
