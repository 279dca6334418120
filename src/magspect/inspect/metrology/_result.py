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

    def roi_xyxy_px(self, pad_px: int = 8) -> tuple[int, int, int, int]:
        """Bounding box ``(x0, y0, x1, y1)`` (exclusive ends) of the fitted outline and the silhouette,
        widened by ``pad_px`` and clipped to the image: every per-pixel step after metrology (ideal
        mask, distances, chips, the model) needs only this region."""
        h, w = self.part_mask.shape
        x0, y0, x1, y1 = (int(v) for v in self._cached("_bbox", self._tight_bbox))
        return max(x0 - pad_px, 0), max(y0 - pad_px, 0), min(x1 + pad_px + 1, w), min(y1 + pad_px + 1, h)

    def _tight_bbox(self) -> np.ndarray:
        pts = [np.asarray(p, float).reshape(-1, 2) for p in self.ideal_outline_xy_px]
        pts.append(np.asarray(self.contour_xy_px, float).reshape(-1, 2))
        allp = np.concatenate(pts)
        return np.concatenate([np.floor(allp.min(0)), np.ceil(allp.max(0))]).astype(int)  # x0, y0, x1, y1

    def _cached(self, key: str, compute):  # noqa: ANN001, ANN202 - frozen dataclass: cache beside the fields
        value = self.__dict__.get(key)
        if value is None:
            value = compute()
            value.flags.writeable = False
            self.__dict__[key] = value
        return value

    def ideal_mask(self) -> np.ndarray:
        """uint8 (H, W) mask of the ideal (fitted) part, holes cleared: pixels more than half covered.

        Rasterised on a 4x finer grid and box-averaged (``fillPoly`` alone includes every boundary
        pixel, which would inflate the outline by about half a pixel), within :meth:`roi_xyxy_px`
        only. Computed once per result: read-only.
        """
        return self._cached("_ideal_mask", self._rasterise_ideal)

    def _rasterise_ideal(self) -> np.ndarray:
        h, w = self.part_mask.shape
        x0, y0, x1, y1 = self.roi_xyxy_px()
        mask = np.zeros((h, w), np.uint8)
        if x1 <= x0 or y1 <= y0:
            return mask
        ss, shift = 4, 4
        canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
        origin = np.array([x0, y0], float)
        polys = [
            np.round(((p - origin + 0.5) * ss - 0.5) * (1 << shift)).astype(np.int32) for p in self.ideal_outline_xy_px
        ]
        # each covered sub-pixel counts 16: the box average of 4x4 is the number covered, exact in uint8
        cv2.fillPoly(canvas, polys[:1], ss * ss, lineType=cv2.LINE_8, shift=shift)
        if len(polys) > 1:
            cv2.fillPoly(canvas, polys[1:], 0, lineType=cv2.LINE_8, shift=shift)
        cover = cv2.resize(canvas, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        mask[y0:y1, x0:x1] = cover >= ss * ss // 2
        return mask

    def inner_distance_px(self) -> np.ndarray:
        """float32 (H, W): each pixel's distance (px) to the nearest pixel outside the ideal mask
        (0 outside the part). Computed once per result, within the ROI: read-only."""
        return self._cached("_inner_distance", self._inner_distance)

    def _inner_distance(self) -> np.ndarray:
        ideal = self.ideal_mask()
        out = np.zeros(ideal.shape, np.float32)
        x0, y0, x1, y1 = self.roi_xyxy_px()  # the ROI keeps a zero border, so the crop's distances are exact
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = cv2.distanceTransform(
                np.ascontiguousarray(ideal[y0:y1, x0:x1]), cv2.DIST_L2, cv2.DIST_MASK_PRECISE
            )
        return out
