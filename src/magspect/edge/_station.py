"""The station: acquisition, inference and output as separate threads joined by bounded queues.

::

    camera --grab--> [acquisition] --infer_q (bounded)--> [inference x N] --+
                          |                                                  +--> decide --> out_q --> [output: PLC]
                          +--> deadline watchdog ---- no verdict in time ---+                  --> rec_q --> [recorder]

Every acquired part is decided exactly once: by its inspection, or fail-safe REJECT when its
deadline (the time until it reaches the reject gate) passes first, or at once when the inference
queue is full. No part passes uninspected. Counters reconcile: acquired = inspected + fail_safe.
A late inspection result is discarded (the gate already acted on the fail-safe verdict).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from magspect.edge._camera import Camera, PartCapture, SourceExhausted
from magspect.inspect.gate import fail_closed
from magspect.specs import get_spec
from magspect.store import PartMeta
from magspect.types import InspectionResult, SpecRef, Verdict

log = logging.getLogger("magspect.edge")


@dataclass
class Decision:
    """What the reject gate does with one part, and why."""

    seq: int
    serial: str
    lane: str
    result: InspectionResult
    fail_safe: bool  # True: no inspection verdict in time (or no room to inspect): rejected unseen
    t_trigger_s: float
    t_decided_s: float
    deadline_s: float
    truth: Any = None
    record_id: str | None = None

    @property
    def reject(self) -> bool:
        """The reject signal: anything not proven conforming leaves the line (REJECT and REVIEW)."""
        return self.result.verdict != Verdict.PASS

    @property
    def latency_ms(self) -> float:
        return (self.t_decided_s - self.t_trigger_s) * 1e3


@dataclass
class _Part:
    seq: int
    capture: PartCapture
    spec_id: str
    deadline_s: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    decided: bool = False


class Output(Protocol):
    """A consumer of decisions (the PLC side): OPC UA, MQTT, a test probe."""

    def start(self, station: Station) -> None: ...

    def publish(self, decision: Decision) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Counters:
    acquired: int = 0
    inspected: int = 0
    fail_safe: int = 0
    deadline_misses: int = 0
    overload_rejects: int = 0
    late_results: int = 0
    passed: int = 0
    rejected: int = 0
    review: int = 0
    recorded: int = 0
    record_errors: int = 0


class Station:
    """Runs a camera through an Inspector to a reject gate, outputs and the record store.

    ``inspector``: anything with ``inspect(views, spec=, part_id=, um_per_px=, backlights=)``.
    ``records``: a :class:`~magspect.edge.RecordSink` (or ``None``: nothing recorded).
    ``deadline_ms``: from trigger to reject gate. ``workers``: inference threads. ``owns_inspector``:
    ``stop()`` closes the inspector (e.g. a :class:`~magspect.inspect.procpool.ProcessInspector`'s processes).
    """

    def __init__(
        self,
        camera: Camera,
        inspector: Any,
        spec: str,
        *,
        deadline_ms: float = 1000.0,
        queue_size: int = 8,
        workers: int = 2,
        records: Any = None,
        outputs: list[Output] | tuple[Output, ...] = (),
        station_name: str = "station-1",
        meta: dict[str, str] | None = None,
        on_record: Callable[[Decision], None] | None = None,
        owns_inspector: bool = False,
    ) -> None:
        get_spec(spec)  # unknown spec: fail now, not per part
        if deadline_ms <= 0 or queue_size < 1 or workers < 1:
            raise ValueError("deadline_ms > 0, queue_size >= 1 and workers >= 1 are required")
        self.camera = camera
        self.inspector = inspector
        self._spec_id = spec
        self.deadline_s = deadline_ms / 1e3
        self.workers = workers
        self.records = records
        self.outputs = list(outputs)
        self.station_name = station_name
        self.meta = dict(meta or {})
        self.on_record = on_record
        self.owns_inspector = owns_inspector  # closed by stop() (its worker processes, if any)
        self.counters = Counters()
        self.state = "Initialized"
        self.error: str | None = None
        self._lock = threading.Lock()
        self._infer_q: queue.Queue[_Part] = queue.Queue(maxsize=queue_size)
        self._out_q: queue.Queue[Decision | None] = queue.Queue()
        self._rec_q: queue.Queue[Decision | None] = queue.Queue()
        self._heap: list[tuple[float, int, _Part]] = []
        self._heap_cond = threading.Condition()
        self._undecided = 0
        self._seq = itertools.count(1)
        self._stop_acq = threading.Event()
        self._stop_all = threading.Event()
        self._acq_done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._beats: dict[str, float] = {}
        self._latencies_ms: deque[float] = deque(maxlen=10000)
        self._decided_times: deque[float] = deque(maxlen=10000)
        self.last_by_lane: dict[str, Decision] = {}
        self._pending_images: dict[int, PartCapture | None] = {}
        self.heartbeat = 0
        self.started_at: float | None = None

    # -- operations ------------------------------------------------------------------------
    @property
    def spec_id(self) -> str:
        return self._spec_id

    def set_recipe(self, spec_id: str) -> None:
        """Change the spec (recipe) without a restart: parts triggered from now on use it."""
        spec = get_spec(spec_id)  # raises UnknownSpecError: the recipe stays as it was
        with self._lock:
            self._spec_id = spec.id
        log.info("recipe changed to %s", spec.id)

    def start(self) -> None:
        for o in self.outputs:
            o.start(self)
        if self.records is not None:
            self.records.start()
        self.camera.open()
        self.started_at = time.monotonic()
        self.state = "ContinuousExecution"
        targets: list[tuple[str, Callable[[], None]]] = [
            ("acquisition", self._acquire_loop), ("watchdog", self._watchdog_loop),
            ("output", self._output_loop), ("recorder", self._record_loop), ("heartbeat", self._heartbeat_loop),
        ] + [(f"inference-{i + 1}", self._infer_loop) for i in range(self.workers)]
        for name, fn in targets:
            t = threading.Thread(target=self._guard(name, fn), name=f"edge-{name}", daemon=True)
            self._beats[name] = time.monotonic()
            self._threads.append(t)
            t.start()

    def _guard(self, name: str, fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except Exception as exc:  # a dead stage: the station is in error; undecided parts still time out
                log.exception("stage %s died", name)
                self.state, self.error = "Error", f"{name}: {type(exc).__name__}: {exc}"
        return run

    def wait_source_done(self, timeout_s: float | None = None) -> bool:
        """Block until a finite source is exhausted (or acquisition stopped)."""
        return self._acq_done.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Graceful stop: no new parts; every part in flight is decided, output and recorded."""
        t_end = time.monotonic() + timeout_s
        self._stop_acq.set()
        self._acq_done.wait(max(0.0, t_end - time.monotonic()))
        while time.monotonic() < t_end:
            with self._heap_cond:
                if self._undecided == 0:
                    break
            time.sleep(0.01)
        with self._heap_cond:  # out of time (a stage died or hangs): the rest are rejected, fail-safe
            left = [p for _, _, p in self._heap if not p.decided]
        for part in left:
            self._decide(part, self._fail_safe(part, "station stopped before a verdict: rejected uninspected"), True)
        self._out_q.put(None)
        for t in self._threads:
            if t.name == "edge-output":
                t.join(max(0.0, t_end - time.monotonic()))
        for t in self._threads:
            if t.name == "edge-recorder":
                t.join(max(0.0, t_end - time.monotonic()))
        self._stop_all.set()
        with self._heap_cond:
            self._heap_cond.notify_all()
        for t in self._threads:
            t.join(max(0.1, t_end - time.monotonic()))
        self.camera.close()
        if self.owns_inspector and hasattr(self.inspector, "close"):
            self.inspector.close()
        if self.records is not None:
            self.records.stop()
        self.state = "Halted"
        for o in self.outputs:
            o.stop()

    # -- stages ----------------------------------------------------------------------------
    def _acquire_loop(self) -> None:
        try:
            while not self._stop_acq.is_set():
                self._beats["acquisition"] = time.monotonic()
                try:
                    cap = self.camera.grab(0.1)
                except SourceExhausted:
                    break
                if cap is None:
                    continue
                with self._lock:
                    spec_id = self._spec_id
                part = _Part(next(self._seq), cap, spec_id, cap.t_trigger_s + self.deadline_s)
                with self._heap_cond:
                    self.counters.acquired += 1
                    self._undecided += 1
                    heapq.heappush(self._heap, (part.deadline_s, part.seq, part))
                    self._heap_cond.notify()
                try:
                    self._infer_q.put_nowait(part)
                except queue.Full:  # no room to inspect it in time: reject it now, fail-safe
                    self._decide(part, self._fail_safe(part, "station overloaded: inference queue full"), True,
                                 overload=True)
        finally:
            self._acq_done.set()

    def _infer_loop(self) -> None:
        name = threading.current_thread().name.removeprefix("edge-")
        while not self._stop_all.is_set():
            self._beats[name] = time.monotonic()
            try:
                part = self._infer_q.get(timeout=0.1)
            except queue.Empty:
                continue
            if part.decided or time.monotonic() >= part.deadline_s:
                continue  # too late to help: the watchdog rejects it (saves the time for the parts behind)
            cap = part.capture
            try:
                result = self.inspector.inspect(cap.views, spec=part.spec_id, part_id=cap.serial,
                                                um_per_px=cap.um_per_px, backlights=cap.backlights)
            except Exception as exc:  # noqa: BLE001 - an inspector that raises: that part fails safe, the stage lives
                log.exception("inspection of %s raised", cap.serial)
                result = self._fail_safe(part, f"inspection failed: {type(exc).__name__}: {exc}")
            if time.monotonic() > part.deadline_s:
                with self._lock:
                    self.counters.late_results += 1
                continue
            if not self._decide(part, result, False):
                with self._lock:
                    self.counters.late_results += 1

    def _watchdog_loop(self) -> None:
        while not self._stop_all.is_set():
            self._beats["watchdog"] = time.monotonic()
            with self._heap_cond:
                while self._heap and self._heap[0][2].decided:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if not self._heap or self._heap[0][0] > now:
                    wait = min(0.1, self._heap[0][0] - now) if self._heap else 0.1
                    self._heap_cond.wait(max(0.0, wait))
                    continue
                _, _, part = heapq.heappop(self._heap)
            msg = f"no verdict within the {self.deadline_s * 1e3:.0f} ms deadline: rejected uninspected"
            if self._decide(part, self._fail_safe(part, msg), True):
                with self._lock:
                    self.counters.deadline_misses += 1

    def _fail_safe(self, part: _Part, message: str) -> InspectionResult:
        gate = fail_closed(message)
        spec = get_spec(part.spec_id)
        return InspectionResult(part_id=part.capture.serial, verdict=Verdict.REJECT, reasons=gate.reasons,
                                spec=SpecRef(id=spec.id, version=spec.version), views=tuple(part.capture.views),
                                error=message)

    def _decide(self, part: _Part, result: InspectionResult, fail_safe: bool, overload: bool = False) -> bool:
        with part.lock:
            if part.decided:
                return False
            part.decided = True
        now = time.monotonic()
        d = Decision(part.seq, part.capture.serial, part.capture.lane, result, fail_safe, part.capture.t_trigger_s,
                     now, part.deadline_s, part.capture.truth)
        with self._lock:
            c = self.counters
            if fail_safe:
                c.fail_safe += 1
                c.overload_rejects += int(overload)
            else:
                c.inspected += 1
            v = result.verdict
            c.passed += v == Verdict.PASS
            c.rejected += v == Verdict.REJECT
            c.review += v == Verdict.REVIEW
            self._latencies_ms.append(d.latency_ms)
            self._decided_times.append(now)
            self.last_by_lane[d.lane] = d
            # the images are kept only with a record that keeps them (rejected parts)
            self._pending_images[part.seq] = part.capture if self._wants_images(result) else None
        self._out_q.put(d)
        with self._heap_cond:
            self._undecided -= 1
        return True

    def _wants_images(self, result: InspectionResult) -> bool:
        return self.records is not None and self.records.wants_images(result)

    def _output_loop(self) -> None:
        while True:
            self._beats["output"] = time.monotonic()
            try:
                d = self._out_q.get(timeout=0.1)
            except queue.Empty:
                if self._stop_all.is_set():
                    return
                continue
            if d is None:
                self._rec_q.put(None)
                return
            for o in self.outputs:
                try:
                    o.publish(d)
                except Exception:  # noqa: BLE001 - one output failing must not stop the gate or the records
                    log.exception("output %s failed", type(o).__name__)
            self._rec_q.put(d)

    def _record_loop(self) -> None:
        import cv2

        while True:
            self._beats["recorder"] = time.monotonic()
            try:
                d = self._rec_q.get(timeout=0.1)
            except queue.Empty:
                if self._stop_all.is_set():
                    return
                continue
            if d is None:
                return
            with self._lock:
                cap = self._pending_images.pop(d.seq, None)
            if self.records is None:
                continue
            images = None
            if cap is not None:
                images = {v: cv2.imencode(".png", img)[1].tobytes() for v, img in cap.views.items()}
            meta = PartMeta(serial=d.serial, station=self.station_name, **self.meta)
            try:
                d.record_id = self.records.add(d.result, meta, images)
            except Exception:  # noqa: BLE001 - counted and logged; the station keeps deciding parts
                log.exception("record of %s not stored", d.serial)
                with self._lock:
                    self.counters.record_errors += 1
                continue
            with self._lock:
                self.counters.recorded += 1
            if self.on_record is not None:
                self.on_record(d)

    def _heartbeat_loop(self) -> None:
        while not self._stop_all.wait(1.0):
            self._beats["heartbeat"] = time.monotonic()
            self.heartbeat += 1

    # -- status ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Counters, rate over the last 5 s, queue depths, latency percentiles, health."""
        now = time.monotonic()
        with self._lock:
            c = dict(vars(self.counters))
            recent = [t for t in self._decided_times if now - t <= 5.0]
            lat = np.asarray(self._latencies_ms, float)
        window = min(5.0, now - self.started_at) if self.started_at else 0.0
        fwd = getattr(self.records, "forwarder", None)
        return {
            "state": self.state,
            "recipe": self.spec_id,
            "heartbeat": self.heartbeat,
            **c,
            "in_flight": c["acquired"] - c["inspected"] - c["fail_safe"],  # acquired = inspected + fail_safe + this
            "parts_per_s": len(recent) / window if window > 0.5 else 0.0,
            "queue_depth": self._infer_q.qsize(),
            "output_backlog": self._out_q.qsize() + self._rec_q.qsize(),
            "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else None,
            "latency_p99_ms": float(np.percentile(lat, 99)) if lat.size else None,
            "spooled": fwd.pending if fwd else 0,  # records waiting for the central store
            "central_reachable": fwd.reachable if fwd else None,
            # inspection worker processes that died and were replaced (model.processes; their parts failed safe)
            "worker_restarts": int(getattr(self.inspector, "restarts", 0)),
            "healthy": self.healthy(),
            "error": self.error,
        }

    def healthy(self, stale_s: float = 3.0) -> bool:
        if self.state not in ("ContinuousExecution",):
            return self.state == "Halted" and self.error is None
        now = time.monotonic()
        alive = {t.name.removeprefix("edge-"): t.is_alive() for t in self._threads}
        for name, beat in self._beats.items():
            if name == "acquisition" and self._acq_done.is_set():
                continue  # a finite source that has ended is not a fault
            if not alive.get(name, False) or now - beat > stale_s:
                return False
        return True

    def status_line(self) -> str:
        s = self.snapshot()
        p99 = f"{s['latency_p99_ms']:.0f}" if s["latency_p99_ms"] is not None else "-"
        return (f"[{s['state']}] {s['recipe']} | {s['parts_per_s']:.1f} parts/s | queue {s['queue_depth']} | "
                f"acquired {s['acquired']} inspected {s['inspected']} rejects {s['rejected'] + s['review']} | "
                f"fail-safe {s['fail_safe']} (deadline misses {s['deadline_misses']}) | p99 {p99} ms | "
                + (f"spooled {s['spooled']} | " if s["central_reachable"] is not None else "")
                + (f"worker restarts {s['worker_restarts']} | " if s["worker_restarts"] else "")
                + f"{'healthy' if s['healthy'] else 'UNHEALTHY'}")

    @property
    def last_decided_s(self) -> float | None:
        """time.monotonic() of the latest decision."""
        with self._lock:
            return self._decided_times[-1] if self._decided_times else None

    def latencies_ms(self) -> list[float]:
        with self._lock:
            return list(self._latencies_ms)

