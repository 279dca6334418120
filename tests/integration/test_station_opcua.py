"""The PLC side: a real asyncua client on 127.0.0.1 reads the station's state, counters, last verdict
per lane and reject signal, and changes the recipe through the SelectRecipe method."""

import asyncio
import socket
import time

import numpy as np
import pytest

from magspect.edge import PartCapture, SourceExhausted, Station

asyncua = pytest.importorskip("asyncua", reason="asyncua not installed (pip install 'magspect[edge]')")

from magspect.edge import OpcUaOutput  # noqa: E402
from magspect.types import InspectionResult, Reason, SpecRef, Verdict  # noqa: E402

SPEC = "def-blk-20x10x5-nicuni"
NS = "urn:magspect:station"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class GatedCamera:
    """Emits one part each time ``release`` is called; lanes alternate 1, 2."""

    name = "gated"

    def __init__(self):
        self.n, self.released, self.done = 0, 0, False

    def open(self):
        pass

    def grab(self, timeout_s):
        if self.n >= self.released:
            if self.done:
                raise SourceExhausted
            time.sleep(min(timeout_s, 0.02))
            return None
        self.n += 1
        return PartCapture(serial=f"S{self.n}", views={"top": np.zeros((4, 4), np.uint8)}, um_per_px={"top": 1.0},
                           lane=str(2 - self.n % 2))

    def close(self):
        pass


class OddRejects:
    def inspect(self, views, *, spec, part_id, um_per_px, backlights):
        n = int(part_id[1:])
        if n % 2:
            return InspectionResult(part_id=part_id, verdict=Verdict.REJECT, spec=SpecRef(id=spec, version=1),
                                    reasons=(Reason(rule="defect.crack", verdict=Verdict.REJECT, message="crack"),))
        return InspectionResult(part_id=part_id, verdict=Verdict.PASS, spec=SpecRef(id=spec, version=1))


async def _client_session(url, cam, station):
    from asyncua import Client, ua

    async with Client(url=url, timeout=10) as client:
        idx = await client.get_namespace_index(NS)
        root = await client.nodes.objects.get_child([f"{idx}:station-t"])

        async def read(path):
            node = await root.get_child([f"{idx}:{p}" for p in path.split("/")])
            return await node.read_value()

        async def wait_for(path, value, timeout=10.0):
            t_end = time.monotonic() + timeout
            while time.monotonic() < t_end:
                v = await read(path)
                if v == value:
                    return v
                await asyncio.sleep(0.05)
            raise AssertionError(f"{path} stayed {await read(path)!r}, expected {value!r}")

        await wait_for("SystemState", "ContinuousExecution", timeout=3)
        assert await read("RecipeManagement/ActiveRecipe") == SPEC
        hb0 = await read("Heartbeat")
        events = []

        class Handler:
            def event_notification(self, event):
                events.append(event.get_event_props_as_fields_dict())

        etype = await client.nodes.base_event_type.get_child([f"{idx}:ResultReadyEventType"])
        sub = await client.create_subscription(20, Handler())
        await sub.subscribe_events(root, etype)

        cam.released = 1  # S1 on lane 1: REJECT
        await wait_for("Lanes/1/Sequence", 1)
        assert await read("Lanes/1/LastPartId") == "S1"
        assert await read("Lanes/1/LastVerdict") == "REJECT"
        assert await read("Lanes/1/Reject") is True
        assert await read("ResultManagement/LastResult/Reason") == "crack"
        cam.released = 2  # S2 on lane 2: PASS
        await wait_for("Lanes/2/Sequence", 2)
        assert await read("Lanes/2/LastPartId") == "S2"
        assert await read("Lanes/2/Reject") is False and await read("Lanes/2/LastVerdict") == "PASS"
        assert await read("Lanes/1/LastPartId") == "S1"  # lane 1 keeps its own last result
        assert await read("ResultManagement/LastResult/ResultId") == "S2"
        assert await read("ResultManagement/LastResult/FailSafe") is False
        await wait_for("Counters/Acquired", 2)
        await wait_for("Counters/Inspected", 2)
        assert await read("Counters/Rejected") == 1 and await read("Counters/Passed") == 1
        assert await read("Counters/FailSafe") == 0
        await wait_for("Heartbeat", hb0 + 1, timeout=5)
        assert await read("Healthy") is True

        t_end = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < t_end:
            await asyncio.sleep(0.05)
        got = [(e["PartId"].Value, e["Verdict"].Value, e["Reject"].Value, e["Lane"].Value) for e in events]
        assert got == [("S1", "REJECT", True, "1"), ("S2", "PASS", False, "2")]
        await sub.delete()

        recipes = await root.get_child([f"{idx}:RecipeManagement"])
        method = await recipes.get_child([f"{idx}:SelectRecipe"])
        ok, msg = await recipes.call_method(method, ua.Variant("no-such-spec", ua.VariantType.String))
        assert ok is False and "no-such-spec" in msg
        ok, msg = await recipes.call_method(method, ua.Variant("com-blk-20x10x5-zn", ua.VariantType.String))
        assert ok is True
        assert station.spec_id == "com-blk-20x10x5-zn"
        assert await read("RecipeManagement/ActiveRecipe") == "com-blk-20x10x5-zn"
        cam.released = 3
        await wait_for("ResultManagement/LastResult/RecipeId", "com-blk-20x10x5-zn")


def test_opcua_values_read_by_a_real_client():
    port = _free_port()
    url = f"opc.tcp://127.0.0.1:{port}/magspect/"
    cam = GatedCamera()
    st = Station(cam, OddRejects(), SPEC, outputs=[OpcUaOutput(url, lanes=2, status_period_s=0.1)],
                 station_name="station-t", deadline_ms=2000)
    st.start()
    try:
        asyncio.run(_client_session(url, cam, st))
    finally:
        cam.done = True
        st.stop()
    assert st.counters.acquired == 3 == st.counters.inspected
