"""Inspections in worker processes: one Inspector per process, ``inspect()`` callable from any thread.

Why: the pipeline's Python steps (metrology's edge fits, defect measurement, the gate) hold the
GIL, so two inference threads of one process cannot keep two cores busy; two processes can
(BENCHMARKS.md, "Camera station": about a fifth more parts/s on 2 cores). The camera station's
``model.processes`` setting uses this; its inference threads each wait on one worker.

Each worker is *spawned* (not forked: onnxruntime's thread pools do not survive a fork) and builds
its Inspector once from :class:`InspectorSettings`, plain values that pickle; only the part's images
go in and the :class:`~magspect.types.InspectionResult` comes back. Fail closed:

* a worker that cannot build its Inspector (missing model, bad verifier) stops the pool's
  construction with that worker's error, before any part is inspected;
* a worker that dies mid-part (killed, out of memory) makes that ``inspect()`` raise
  :class:`WorkerDiedError` (the station rejects the part, fail-safe) and the pool is rebuilt for
  the next part; :attr:`ProcessInspector.restarts` counts it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from magspect.types import InspectionResult, ModelRef, Tta


class WorkerDiedError(RuntimeError):
    """An inspection worker process died while it held the part: the part was not judged."""


@dataclass(frozen=True)
class InspectorSettings:
    """How each worker builds its Inspector (the station's ``model`` section, resolved to a file)."""

    model: Path | None = None  # an ONNX export; None: the bundled one (``int8`` picks which)
    int8: bool = False
    threads: int | None = None  # onnxruntime intra-op threads per worker
    providers: tuple[str, ...] | None = None
    spin: bool = False
    max_batch_images: int = 8
    # a file, "darkfield" (the bundled one for dark-field views), False or "none" for none, None: the
    # bundled one if it fits
    verifier: Path | str | Literal[False] | None = None
    review_below: float | None = None
    cv2_threads: int = 1  # OpenCV threads in each worker process: the processes are the parallelism
    tta: Tta = "none"
    subtypes: Path | str | Literal[False] | None = None  # the coating-flaw subtype classifier, as ``verifier``

    def build(self) -> Any:
        """The Inspector these settings describe (as the station builds one in-process)."""
        from magspect.inspect.backend import Segmenter, bundled_model_path
        from magspect.inspect.batching import BatchingSegmenter
        from magspect.inspect.inspector import Inspector

        path = self.model if self.model is not None else bundled_model_path(int8=self.int8)
        seg = Segmenter(path, providers=list(self.providers) if self.providers else None, threads=self.threads,
                        warmup=True, spin=self.spin, confidence="defects", tta=self.tta)
        return Inspector(segmenter=BatchingSegmenter(seg, max_images=self.max_batch_images), verifier=self.verifier,
                         review_below=self.review_below, subtypes=self.subtypes)


# -- worker side ------------------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init_worker(settings: InspectorSettings) -> None:
    # Ctrl-C, a terminal hang-up or a service manager's SIGTERM reach the whole process group: the
    # parent stops gracefully (drains its parts, then closes this pool), so the workers must not die
    # first and fail the parts in flight. A worker whose parent is gone exits by itself.
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    parent = os.getppid()

    def orphan_watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=orphan_watch, name="magspect-orphan-watch", daemon=True).start()
    try:
        import cv2

        cv2.setNumThreads(settings.cv2_threads)
        _WORKER["inspector"] = settings.build()
    except Exception as exc:  # noqa: BLE001 - reported to the parent by _describe, not lost in a log
        _WORKER["error"] = f"{type(exc).__name__}: {exc}"


def _describe(hold_s: float) -> dict[str, Any]:
    time.sleep(hold_s)  # keeps this worker busy so that the next start-up job reaches another one
    if "error" in _WORKER:
        return {"pid": os.getpid(), "error": _WORKER["error"]}
    insp = _WORKER["inspector"]
    refs = {k: None if r is None else r.model_dump()
            for k, r in (("verifier_ref", insp.verifier_ref), ("subtypes_ref", insp.subtypes_ref))}
    return {"pid": os.getpid(), "model": insp.segmenter.name, "model_sha256": insp.segmenter.sha256,
            "provider": insp.segmenter.provider, "verifier_review_below": insp.verifier_review_below, **refs}


def _inspect(views: Mapping[str, Any], kwargs: dict[str, Any]) -> InspectionResult:
    if "error" in _WORKER:  # cannot happen after a good start-up; never a verdict without an Inspector
        raise RuntimeError(f"inspection worker has no Inspector: {_WORKER['error']}")
    return _WORKER["inspector"].inspect(views, **kwargs)


# -- parent side ------------------------------------------------------------------------------------
class ProcessInspector:
    """``inspect(views, spec=..., ...)`` like :class:`~magspect.inspect.inspector.Inspector`, run by
    one of ``processes`` worker processes. Thread-safe; start-up waits until every worker has its
    Inspector (seconds: each loads and warms the model)."""

    def __init__(self, settings: InspectorSettings, processes: int = 2, start_timeout_s: float = 300.0) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes}")
        self.settings, self.processes, self.start_timeout_s = settings, processes, start_timeout_s
        self.restarts = 0
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self.workers = self._start()

    def _start(self) -> list[dict[str, Any]]:
        pool = ProcessPoolExecutor(self.processes, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                   initargs=(self.settings,))
        try:
            jobs = [pool.submit(_describe, 0.5) for _ in range(self.processes)]
            info = [j.result(timeout=self.start_timeout_s) for j in jobs]
        except BaseException as exc:
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError(f"inspection workers did not start: {type(exc).__name__}: {exc}") from exc
        errors = sorted({i["error"] for i in info if "error" in i})
        if errors:
            pool.shutdown(wait=True, cancel_futures=True)
            raise RuntimeError(f"inspection workers could not build their Inspector: {'; '.join(errors)}")
        self._pool = pool
        return info

    @property
    def model_ref(self) -> ModelRef:
        """The model the workers judge with (as :attr:`Inspector.model_ref`)."""
        w = self.workers[0]
        return ModelRef(name=w["model"], sha256=w["model_sha256"], provider=w["provider"])

    def _ref(self, key: str) -> ModelRef | None:
        ref = self.workers[0][key]
        return None if ref is None else ModelRef(**ref)

    @property
    def verifier_ref(self) -> ModelRef | None:
        """The look-alike verifier the workers use, if any (as :attr:`Inspector.verifier_ref`)."""
        return self._ref("verifier_ref")

    @property
    def subtypes_ref(self) -> ModelRef | None:
        """The coating-flaw subtype classifier the workers use, if any (as :attr:`Inspector.subtypes_ref`)."""
        return self._ref("subtypes_ref")

    @property
    def verifier_review_below(self) -> float | None:
        return self.workers[0]["verifier_review_below"]

    def inspect(self, views: Mapping[str, Any], **kwargs: Any) -> InspectionResult:
        pool = self._pool
        if pool is None:
            raise RuntimeError("ProcessInspector is closed")
        try:
            return pool.submit(_inspect, dict(views), kwargs).result()
        except BrokenProcessPool as exc:
            with self._lock:
                if self._pool is pool:  # the first caller to see it rebuilds (the parts in flight were lost with it)
                    pool.shutdown(wait=False, cancel_futures=True)
                    self.restarts += 1
                    self.workers = self._start()
            raise WorkerDiedError(f"an inspection worker process died; part not judged ({exc})") from exc

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProcessInspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
