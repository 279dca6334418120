"""Batching when behind: model calls that arrive while the model runs merged into one batch.

The Inspector sends each view to the model as soon as that view is measured, and a station's
inference workers run whole inspections side by side; every model call goes through one
:class:`BatchingSegmenter`. The model runs one batch at a time (with all its intra-op threads, so
calls never fight over the cores); calls that arrive while it runs wait and go together in the
next batch. So a line that keeps up runs each view alone (no added latency), and one that falls
behind batches automatically, up to ``max_images`` images per run (zero-delay dynamic batching).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np


class _Call:
    __slots__ = ("done", "error", "images", "result", "rois", "seconds")

    def __init__(self, images: list[np.ndarray], rois: list[Any]) -> None:
        self.images = images
        self.rois = rois
        self.done = threading.Event()
        self.result: list[Any] | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0  # this call's share of its batch's run time


class BatchingSegmenter:
    """Wraps a Segmenter (anything with ``predict(images, batch_size=, rois=)`` and ``manifest``,
    ``name``, ``sha256``, ``provider``); same interface, thread-safe. ``batch_sizes`` keeps the last
    1000 run sizes (images)."""

    def __init__(self, inner: Any, *, max_images: int = 8) -> None:
        if max_images < 1:
            raise ValueError("max_images must be >= 1")
        self.inner = inner
        self.max_images = max_images
        self._pending: deque[_Call] = deque()
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.batch_sizes: deque[int] = deque(maxlen=1000)

    def __getattr__(self, name: str) -> Any:  # manifest, name, sha256, provider, ... of the wrapped model
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def predict(
        self, images: Sequence[np.ndarray], batch_size: int = 8, rois: Sequence[Any] | None = None
    ) -> list[Any]:
        return self.predict_timed(images, batch_size, rois)[0]

    def predict_timed(
        self, images: Sequence[np.ndarray], batch_size: int = 8, rois: Sequence[Any] | None = None
    ) -> tuple[list[Any], float]:
        """Like :meth:`predict`, with this call's share of its batch's run time in seconds (its
        images' share; time spent waiting for an earlier batch not counted)."""
        call = _Call(list(images), list(rois) if rois is not None else [None] * len(images))
        with self._lock:
            self._pending.append(call)
        while not call.done.is_set():
            with self._run_lock:
                if call.done.is_set():
                    break
                with self._lock:
                    take: list[_Call] = []
                    n = 0
                    while self._pending and (not take or n + len(self._pending[0].images) <= self.max_images):
                        c = self._pending.popleft()
                        take.append(c)
                        n += len(c.images)
                if not take:
                    continue
                self.batch_sizes.append(n)
                t = time.perf_counter()
                try:
                    out = self.inner.predict(
                        [im for c in take for im in c.images],
                        batch_size=max(batch_size, n),
                        rois=[r for c in take for r in c.rois],
                    )
                except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
                    for c in take:
                        c.error = exc
                        c.done.set()
                    continue
                seconds = time.perf_counter() - t
                k = 0
                for c in take:
                    c.result = list(out[k : k + len(c.images)])
                    c.seconds = seconds * len(c.images) / max(n, 1)
                    k += len(c.images)
                    c.done.set()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result, call.seconds
