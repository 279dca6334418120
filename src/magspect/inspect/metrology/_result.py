"""What metrology returns: values in mm/deg plus the fitted ideal outline, in pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np


@dataclass(frozen=True)
class OutlineEdge:
    """One numbered edge of the ideal outline (``index`` is 1-based, as in messages)."""

    index: int
    kind: Literal["line", "arc"]
    points_xy_px: np.ndarray  # (K, 2) polyline along the edge


@dataclass(frozen=True)
class MetrologyResult:
    """One view of one part, measured.

    ``values`` holds each dimension measured in this view (names as in ``magspect.specs.parts``),
    in millimetres, or degrees for names ending in ``_deg``. Geometry is in the image's pixels.
    """

    shape: str
    view: Literal["top", "side"]
    um_per_px: float
    values: dict[str, float]
    ideal_outline_xy_px: tuple[np.ndarray, ...]  # closed polygons: outer first, then holes
    edges: tuple[OutlineEdge, ...]
    corners_xy_px: np.ndarray  # (K, 2) corners of the ideal outline (empty for discs and rings)
    contour_xy_px: np.ndarray  # (N, 2) the silhouette's outer boundary
    part_mask: np.ndarray  # uint8 (H, W), 1 on the part
    residual_rms_px: dict[str, float] = field(default_factory=dict)  # robust fit residual per primitive
    extras: dict[str, float] = field(default_factory=dict)  # per-corner angles, chamfer legs, ...

    @property
    def mm_per_px(self) -> float:
        return self.um_per_px / 1000.0

    def ideal_mask(self) -> np.ndarray:
        """uint8 (H, W) mask of the ideal (fitted) part, holes cleared: pixels more than half covered.

        Rasterised on a 4x finer grid and box-averaged (``fillPoly`` alone includes every boundary
        pixel, which would inflate the outline by about half a pixel). Computed once per result (it
        rasterises a 16x larger canvas, and the defect stage asks for it more than once): read-only.
        """
        cached = self.__dict__.get("_ideal_mask")
        if cached is not None:
            return cached
        h, w = self.part_mask.shape
        ss, shift = 4, 4
        canvas = np.zeros((h * ss, w * ss), np.uint8)
        polys = [np.round(((p + 0.5) * ss - 0.5) * (1 << shift)).astype(np.int32) for p in self.ideal_outline_xy_px]
        cv2.fillPoly(canvas, polys[:1], 1, lineType=cv2.LINE_8, shift=shift)
        if len(polys) > 1:
            cv2.fillPoly(canvas, polys[1:], 0, lineType=cv2.LINE_8, shift=shift)
        cover = cv2.resize(canvas.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        mask = (cover >= 0.5).astype(np.uint8)
        mask.flags.writeable = False
        self.__dict__["_ideal_mask"] = mask  # frozen dataclass: cache beside the fields
        return mask
