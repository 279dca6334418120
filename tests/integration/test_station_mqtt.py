"""Optional MQTT output: every decision published once, in order, on <prefix>/result; status retained."""

import json
import shutil
import socket
import subprocess
import threading
import time

import numpy as np
import pytest

mqtt = pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed")

from magspect.edge import MqttOutput, PartCapture, SourceExhausted, Station  # noqa: E402
from magspect.types import InspectionResult, Reason, SpecRef, Verdict  # noqa: E402

SPEC = "def-blk-20x10x5-nicuni"


class Parts:
    name = "parts"

    def __init__(self, n):
        self.n, self.i = n, 0

    def open(self):
        pass

    def grab(self, timeout_s):
        if self.i >= self.n:
            raise SourceExhausted
        time.sleep(0.02)
        self.i += 1
        return PartCapture(serial=f"M{self.i}", views={"top": np.zeros((4, 4), np.uint8)}, um_per_px={"top": 1.0})

    def close(self):
        pass


class EveryThirdRejected:
    def inspect(self, views, *, spec, part_id, um_per_px, backlights):
        if int(part_id[1:]) % 3 == 0:
            return InspectionResult(part_id=part_id, verdict=Verdict.REJECT, spec=SpecRef(id=spec, version=1),
                                    reasons=(Reason(rule="r", verdict=Verdict.REJECT, message="chip too deep"),))
        return InspectionResult(part_id=part_id, verdict=Verdict.PASS, spec=SpecRef(id=spec, version=1))


@pytest.fixture
def broker():
    exe = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    if exe is None:
        pytest.skip("no MQTT broker (Debian package mosquitto) installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t_end = time.monotonic() + 10
    while time.monotonic() < t_end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def test_every_decision_published_once_in_order(broker):
    got, status = [], []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *a: c.subscribe("magspect/line-9/#", qos=1)
    sub.on_subscribe = lambda *a: subscribed.set()

    def on_message(c, u, msg):
        (got if msg.topic.endswith("/result") else status).append(json.loads(msg.payload))

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker)
    sub.loop_start()
    assert subscribed.wait(10)
    st = Station(Parts(9), EveryThirdRejected(), SPEC, station_name="line-9", deadline_ms=2000,
                 outputs=[MqttOutput("127.0.0.1", broker, status_period_s=0.1)])
    st.start()
    st.wait_source_done(20)
    st.stop()
    t_end = time.monotonic() + 10
    while len(got) < 9 and time.monotonic() < t_end:
        time.sleep(0.05)
    sub.loop_stop()
    sub.disconnect()
    assert [m["serial"] for m in got] == [f"M{i}" for i in range(1, 10)]
    for m in got:
        rejected = int(m["serial"][1:]) % 3 == 0
        assert m["reject"] is rejected and m["verdict"] == ("REJECT" if rejected else "PASS")
        assert m["recipe"] == SPEC and m["fail_safe"] is False
    assert got[2]["reasons"] == ["chip too deep"]
    assert status and status[-1]["acquired"] == 9 and status[-1]["state"] == "Halted"
