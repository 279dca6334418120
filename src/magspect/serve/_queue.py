"""A bounded inference queue: ``workers`` inspections run at once, ``queue_size`` more may wait.

Beyond that :class:`QueueFullError` is raised at once (the route answers 503 with Retry-After)
instead of letting latency grow without bound. A job stays counted until its thread finishes, even
when the client that asked for it has gone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")


class QueueFullError(RuntimeError):
    pass


class QueueClosedError(RuntimeError):
    pass


class InferenceQueue:
    def __init__(self, workers: int = 1, queue_size: int = 8) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("workers must be >= 1 and queue_size >= 0")
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="magspect-inspect")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False

    @property
    def depth(self) -> int:
        """Jobs accepted and not finished (running or waiting)."""
        return self._in_flight

    def _release(self, _fut: object) -> None:
        with self._lock:
            self._in_flight -= 1

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            if self._closed:
                raise QueueClosedError("the service is shutting down")
            if self._in_flight >= self.capacity:
                raise QueueFullError(f"{self._in_flight} inspections running or waiting (limit {self.capacity})")
            self._in_flight += 1
        try:
            fut = self._executor.submit(partial(fn, *args, **kwargs))
        except RuntimeError as exc:  # executor shut down between the check and the submit
            with self._lock:
                self._in_flight -= 1
            raise QueueClosedError("the service is shutting down") from exc
        fut.add_done_callback(self._release)
        return await asyncio.wrap_future(fut)

    def shutdown(self, wait: bool = True) -> None:
        """Refuse new jobs; with ``wait``, return when the accepted ones have finished."""
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait)
