"""A stand-in Inspector for tests and integrations that need no model: deterministic and fast.

A part is REJECTed (one crack per view) where its image has saturated pixels (255 in 8-bit), else
it PASSes. ``delay_s`` makes each inspection take that long (queue and shutdown tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np

from magspect.inspect.backend import Segmentation
from magspect.inspect.inspector import Inspection, ViewArtifacts
from magspect.specs import get_spec
from magspect.types import Defect, InspectionResult, Measurement, ModelRef, Reason, SpecRef, Verdict


class FakeInspector:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.default_spec: str | None = None
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef(name="fake-fp32", sha256="0" * 64, provider="CPUExecutionProvider")

    def inspect(self, views: Mapping[str, Any], **kw: Any) -> InspectionResult:
        return self.inspect_detailed(views, **kw).result

    def inspect_detailed(self, views: Mapping[str, Any], *, spec: Any = None, part_id: str | None = None,
                         um_per_px: Any = None, calibration: Any = None) -> Inspection:
        t0 = time.perf_counter()
        with self._lock:
            self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        spec_obj = get_spec(spec)
        arts: dict[str, ViewArtifacts] = {}
        defects: list[Defect] = []
        for view, img in views.items():
            if not isinstance(img, np.ndarray):
                raise TypeError("FakeInspector takes decoded images")
            gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
            top_value = 255 if gray.dtype == np.uint8 else 65535
            hot = gray == top_value
            mask = np.where(gray > 0, 1, 0).astype(np.uint8)
            mask[hot] = 2
            arts[view] = ViewArtifacts(image=img, segmentation=Segmentation(mask, np.ones(mask.shape, np.float32)))
            if hot.any():
                ys, xs = np.nonzero(hot)
                defects.append(Defect(class_name="crack", zone="pole_face", view=view, length_mm=1.0, width_mm=0.05,
                                      area_mm2=0.05, bbox_xyxy_px=(float(xs.min()), float(ys.min()),
                                                                   float(xs.max()), float(ys.max()))))
        verdict = Verdict.REJECT if defects else Verdict.PASS
        reasons = tuple(Reason(rule="defect.crack", verdict=Verdict.REJECT, message=f"crack in {d.view} view")
                        for d in defects)
        first = next(iter(spec_obj.dimensions))  # one dimension, measured at nominal: exercises Measurement I/O
        dim = spec_obj.dimensions[first]
        measurements = {first: Measurement(name=first, value=dim.nominal, nominal=dim.nominal, tol_minus=dim.tol_minus,
                                           tol_plus=dim.tol_plus, uncertainty=0.0, status="ok", view="top")}
        result = InspectionResult(
            part_id=part_id, verdict=verdict, reasons=reasons, defects=tuple(defects), measurements=measurements,
            spec=SpecRef(id=spec_obj.id, version=spec_obj.version), model=self.model_ref, views=tuple(views),
            timings_ms={"total": round((time.perf_counter() - t0) * 1e3, 3)}, created_at=datetime.now(UTC),
        )
        return Inspection(result, arts)


def part_png(defect: bool = False, size_px: int = 128, *, bit_depth: int = 8, channels: int = 1) -> bytes:
    """A synthetic part image (a grey block on black), with a white crack line when ``defect``."""
    img = np.zeros((size_px, size_px), np.uint8)
    q = size_px // 4
    img[q:-q, q:-q] = 140
    if defect:
        img[size_px // 2, q + 2 : -q - 2] = 255
    if bit_depth == 16:
        img = img.astype(np.uint16) * 257
    if channels == 3:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif channels == 4:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGRA)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()
