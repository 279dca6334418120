"""The station's reject-gate logic with a scripted camera and a scripted inspector: deadlines,
fail-safe rejects, overload, reconciliation, recipe change, graceful stop, health."""

import threading
import time

import numpy as np
import pytest

from magspect.edge import PartCapture, SourceExhausted, Station
from magspect.inspect.gate import fail_closed
from magspect.specs import UnknownSpecError
from magspect.types import InspectionResult, Reason, SpecRef, Verdict

SPEC = "def-blk-20x10x5-nicuni"
OTHER = "com-blk-20x10x5-zn"


class ListCamera:
    """Parts at a fixed period; finite."""

    name = "list"

    def __init__(self, n, period_s=0.01):
        self.n, self.period_s, self.i = n, period_s, 0

    def open(self):
        self.t0 = time.monotonic()

    def grab(self, timeout_s):
        if self.i >= self.n:
            raise SourceExhausted
        t = self.t0 + self.i * self.period_s
        time.sleep(max(0.0, t - time.monotonic()))
        self.i += 1
        return PartCapture(serial=f"P{self.i:03d}", views={"top": np.zeros((8, 8), np.uint8)},
                           um_per_px={"top": 10.0}, t_trigger_s=t, lane=str(1 + self.i % 2))

    def close(self):
        pass


class ScriptedInspector:
    """Takes ``delay_s(serial)`` seconds; verdict from ``verdict(serial)``; records the spec it was asked for."""

    def __init__(self, delay_s=lambda s: 0.0, verdict=lambda s: Verdict.PASS):
        self.delay_s, self.verdict = delay_s, verdict
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def inspect(self, views, *, spec, part_id, um_per_px, backlights):
        time.sleep(self.delay_s(part_id))
        with self.lock:
            self.seen.append((part_id, spec))
        v = self.verdict(part_id)
        reasons = () if v == Verdict.PASS else (Reason(rule="test", verdict=v, message="scripted"),)
        return InspectionResult(part_id=part_id, verdict=v, reasons=reasons, spec=SpecRef(id=spec, version=1))


class Probe:
    def __init__(self):
        self.decisions = []

    def start(self, station):
        pass

    def publish(self, d):
        self.decisions.append(d)

    def stop(self):
        pass


def _run(camera, inspector, **kw):
    probe = Probe()
    st = Station(camera, inspector, SPEC, outputs=[probe], **kw)
    st.start()
    assert st.wait_source_done(20)
    st.stop(timeout_s=20)
    return st, probe


def test_every_part_is_decided_once_and_counts_reconcile():
    slow = {"P003", "P007"}
    insp = ScriptedInspector(delay_s=lambda s: 0.4 if s in slow else 0.0,
                             verdict=lambda s: Verdict.REJECT if s.endswith(("2", "5")) else Verdict.PASS)
    st, probe = _run(ListCamera(12, 0.02), insp, deadline_ms=150, workers=2, queue_size=16)
    c = st.counters
    assert c.acquired == 12 == c.inspected + c.fail_safe
    assert sorted(d.serial for d in probe.decisions) == [f"P{i:03d}" for i in range(1, 13)]  # exactly once each
    by = {d.serial: d for d in probe.decisions}
    for s in slow:  # took longer than the deadline: rejected fail-safe, never passed
        assert by[s].fail_safe and by[s].reject and by[s].result.verdict == Verdict.REJECT
        assert "deadline" in by[s].result.error
    assert c.deadline_misses >= 2 and c.late_results >= 1
    for d in probe.decisions:
        assert d.t_decided_s <= d.deadline_s + 0.1, f"{d.serial} decided after its deadline"
        if d.result.verdict == Verdict.PASS:
            assert not d.fail_safe and (d.serial, SPEC) in insp.seen, "a part passed without being inspected"
    assert by["P002"].reject and not by["P001"].reject


def test_no_inspector_answer_means_every_part_rejected():
    hang = threading.Event()

    class Hung(ScriptedInspector):
        def inspect(self, *a, **k):
            hang.wait(1)
            return super().inspect(*a, **k)

    st, probe = _run(ListCamera(5, 0.01), Hung(), deadline_ms=100, workers=1, queue_size=2)
    hang.set()
    c = st.counters
    assert c.acquired == 5 and c.fail_safe == 5 and c.inspected == 0 and c.passed == 0
    assert c.overload_rejects >= 1  # the queue of 2 filled up behind the hung worker
    assert all(d.reject and d.fail_safe for d in probe.decisions)


def test_recipe_changes_without_restart():
    insp = ScriptedInspector(delay_s=lambda s: 0.0)
    cam = ListCamera(20, 0.02)
    st = Station(cam, insp, SPEC, deadline_ms=1000)
    st.start()
    while st.counters.acquired < 5:
        time.sleep(0.005)
    with pytest.raises(UnknownSpecError):
        st.set_recipe("no-such-spec")
    assert st.spec_id == SPEC
    st.set_recipe(OTHER)
    st.wait_source_done(10)
    st.stop()
    specs = [spec for _, spec in sorted(insp.seen)]
    assert specs[0] == SPEC and specs[-1] == OTHER
    k = specs.index(OTHER)
    assert all(s == OTHER for s in specs[k:])


def test_graceful_stop_drains_the_queue():
    insp = ScriptedInspector(delay_s=lambda s: 0.05)
    st = Station(ListCamera(1000, 0.005), insp, SPEC, deadline_ms=5000, workers=1, queue_size=64)
    st.start()
    while st.counters.acquired < 20:
        time.sleep(0.005)
    assert st.healthy()
    st.stop(timeout_s=30)
    c = st.counters
    assert c.acquired >= 20 and c.fail_safe == 0 and c.inspected == c.acquired  # all queued parts inspected
    assert st.state == "Halted" and st.snapshot()["queue_depth"] == 0


def test_fail_safe_result_is_never_pass():
    r = fail_closed("x")
    assert r.verdict != Verdict.PASS
    with pytest.raises(ValueError):
        InspectionResult(part_id="p", verdict=Verdict.PASS, error="deadline")


def test_status_line_and_snapshot():
    st, _ = _run(ListCamera(6, 0.01), ScriptedInspector(), deadline_ms=1000)
    s = st.snapshot()
    assert s["acquired"] == 6 and s["latency_p99_ms"] is not None and s["state"] == "Halted"
    line = st.status_line()
    for needle in ("parts/s", "queue", "rejects", "deadline misses"):
        assert needle in line


def test_an_inspector_that_raises_rejects_that_part_and_the_station_lives():
    class Flaky(ScriptedInspector):
        def inspect(self, views, **kw):
            if kw["part_id"] == "P002":
                raise ZeroDivisionError("boom")
            return super().inspect(views, **kw)

    st, probe = _run(ListCamera(4, 0.01), Flaky(), deadline_ms=1000, workers=1)
    by = {d.serial: d for d in probe.decisions}
    assert by["P002"].reject and "boom" in by["P002"].result.error
    assert by["P003"].result.verdict == Verdict.PASS and st.error is None
    assert st.counters.acquired == 4 == st.counters.inspected + st.counters.fail_safe


def test_stop_with_a_dead_watchdog_still_decides_every_part():
    hang = threading.Event()

    class Hung(ScriptedInspector):
        def inspect(self, *a, **k):
            hang.wait(3)
            return super().inspect(*a, **k)

    probe = Probe()
    st = Station(ListCamera(3, 0.01), Hung(), SPEC, deadline_ms=60000, workers=1, outputs=[probe])
    st._watchdog_loop = lambda: None  # noqa: SLF001 - a stage that is gone
    st.start()
    assert st.wait_source_done(5)
    st.stop(timeout_s=0.5)
    hang.set()
    assert sorted(d.serial for d in probe.decisions) == ["P001", "P002", "P003"]
    assert all(d.reject for d in probe.decisions)
    assert st.counters.acquired == 3 == st.counters.inspected + st.counters.fail_safe
