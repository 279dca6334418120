"""What one running app holds: settings, the record store, the Inspector (once loaded), the queue."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from magspect.serve._metrics import Metrics
from magspect.serve._queue import InferenceQueue
from magspect.serve.settings import ServeSettings
from magspect.store import RecordStore
from magspect.types import ModelRef

log = logging.getLogger("magspect.serve")


class InspectorLike(Protocol):
    """What the service needs of :class:`magspect.inspect.inspector.Inspector`."""

    @property
    def model_ref(self) -> ModelRef: ...

    def inspect_detailed(self, views: Any, *, spec: Any = None, part_id: str | None = None,
                         um_per_px: Any = None) -> Any: ...


@dataclass
class OverlaySource:
    """What an overlay is drawn from, per view: the image, the class mask, the fitted outline."""

    image: np.ndarray
    class_mask: np.ndarray | None
    outline_px: np.ndarray | None


def _nbytes(src: OverlaySource) -> int:
    return sum(a.nbytes for a in (src.image, src.class_mask, src.outline_px) if a is not None)


@dataclass
class Service:
    settings: ServeSettings
    store: RecordStore
    queue: InferenceQueue
    metrics: Metrics
    inspector: InspectorLike | None = None
    load_error: str | None = None
    _overlays: OrderedDict[str, dict[str, OverlaySource]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _overlay_bytes: int = 0

    @property
    def ready(self) -> bool:
        return self.inspector is not None

    def load_inspector(self) -> None:
        """Load and warm the model (in a background thread at startup)."""
        from magspect.inspect.inspector import Inspector

        s = self.settings
        # workers share the cores: by default each inference gets its share, not all of them
        env = os.environ.get("MAGSPECT_THREADS", "")
        threads = s.threads or (int(env) if env.isdigit() else 0) or max(1, (os.cpu_count() or 1) // s.workers)
        try:
            model = s.model
            if model is not None and str(model) == "promoted":  # the registry's promoted model
                from magspect.models.registry import promoted_model_path

                model = promoted_model_path(None, int8=s.int8)  # registry: $MAGSPECT_MODELS or the default
                if model is None:
                    raise RuntimeError("--model promoted: no model is promoted in the registry")
            self.inspector = Inspector(
                model, int8=s.int8, providers=s.providers or None, threads=threads, default_spec=s.default_spec,
                tta=s.tta, verifier=s.verifier,
            )
            self.metrics.model_ready.set(1)
            log.info("model %s loaded and warmed", self.inspector.model_ref.name)
        except Exception as exc:  # noqa: BLE001 - reported by /readyz and /v1/models
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.error("model could not be loaded: %s", self.load_error)

    def remember_overlay(self, record_id: str, views: dict[str, OverlaySource]) -> None:
        """Keep the newest inspections' images and masks, within the count and memory limits."""
        n, limit = self.settings.overlay_cache, self.settings.overlay_cache_mb * 2**20
        size = sum(_nbytes(v) for v in views.values())
        if n <= 0 or not views or size > limit:
            return
        with self._lock:
            self._overlays[record_id] = views
            self._overlay_bytes += size
            while len(self._overlays) > n or self._overlay_bytes > limit:
                _, old = self._overlays.popitem(last=False)
                self._overlay_bytes -= sum(_nbytes(v) for v in old.values())

    def recent_overlay(self, record_id: str) -> dict[str, OverlaySource] | None:
        with self._lock:
            return self._overlays.get(record_id)
