"""Chips from geometry, and the rule that a defect lies on the part.

A chip is material missing at an edge or corner. On a back-lit view that is exactly where the
silhouette falls inside the fitted ideal outline (which robust fitting keeps where the intact edges
say it is), so metrology finds chips without the model, with their true depth. The model still
finds chips seen face-on (a fracture with no silhouette change) and every crack and coating flaw.

A segmentation model can also call defects in the background next to a part (a missing chip looks
like background). Nothing outside the part's ideal outline, widened by a small margin, can be a
defect, so those calls are dropped.
"""

from __future__ import annotations

import cv2
import numpy as np

from magspect.types import CLASS_IDS, DEFECT_CLASSES

_DEFECT_IDS = np.array([CLASS_IDS[c] for c in DEFECT_CLASSES], np.uint8)
_LO, _HI = int(_DEFECT_IDS.min()), int(_DEFECT_IDS.max())
# the defect classes' ids are one run (crack, chip, coating flaw): two comparisons, far cheaper
# than a lookup table on a 1024 px mask
assert _HI - _LO + 1 == len(_DEFECT_IDS), "defect class ids must be contiguous"


def _is_defect(class_mask: np.ndarray) -> np.ndarray:
    return (class_mask >= _LO) & (class_mask <= _HI)


Roi = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive ends)


def _crop(a: np.ndarray, roi: Roi | None) -> np.ndarray:
    return a if roi is None else a[roi[1] : roi[3], roi[0] : roi[2]]


def defect_pixels(class_mask: np.ndarray) -> np.ndarray:
    """Bool mask of the pixels called any defect class."""
    return _is_defect(class_mask)


def on_part_only(
    class_mask: np.ndarray, ideal_mask: np.ndarray, margin_px: int = 3, roi: Roi | None = None
) -> np.ndarray:
    """``class_mask`` with defect calls outside the (widened) ideal outline set to background.

    ``roi``: a box holding the whole ideal outline with ``margin_px`` to spare (as
    ``MetrologyResult.roi_xyxy_px()`` gives); only it is examined, everything outside it is off the part.
    """
    k = 2 * margin_px + 1
    cm = _crop(class_mask, roi)
    region = cv2.dilate(np.ascontiguousarray(_crop(ideal_mask, roi), np.uint8), np.ones((k, k), np.uint8)).astype(bool)
    outside = ~region & _is_defect(cm)
    if roi is not None:  # and everything beyond the box
        beyond = _is_defect(class_mask)
        beyond[roi[1] : roi[3], roi[0] : roi[2]] = outside
        outside = beyond
    if not outside.any():
        return class_mask
    out = class_mask.copy()
    out[outside] = CLASS_IDS["background"]
    return out


#: A missing pixel deeper than this inside the ideal outline (its distance transform) joins the chip it
#: touches: past the outermost ring, where a straight edge's 50 % crossing flickers from noise.
TAPER_DEPTH_PX = 1.2


def silhouette_chips(
    ideal_mask: np.ndarray,
    part_mask: np.ndarray,
    min_depth_px: float = 2.0,
    min_area_px: int = 6,
    *,
    roi: Roi | None = None,
    depth_px: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of material missing from the ideal outline, in pieces at least ``min_depth_px`` deep.

    One-pixel ragged silhouette noise is removed by a 3x3 opening; a piece counts as a chip when its
    deepest point lies ``min_depth_px`` or more inside the ideal outline. A chip tapers to nothing at
    its ends, and the opening cuts off its last stretch on each side (under 3 px deep): each chip is
    then grown back over the missing pixels connected to it that lie more than a pixel inside the
    ideal outline (``TAPER_DEPTH_PX``), so its length along the edge is the fracture's, not its deep
    middle's; the outermost ring, where a straight edge's silhouette flickers, never joins.
    ``roi``: a box holding the whole ideal outline (work is limited to it); ``depth_px``: the ideal
    mask's distance transform, when already computed (``MetrologyResult.inner_distance_px()``).
    """
    out = np.zeros(ideal_mask.shape, bool)
    ideal = np.ascontiguousarray(_crop(ideal_mask, roi), np.uint8)
    missing = ((ideal > 0) & (_crop(part_mask, roi) == 0)).astype(np.uint8)
    if not missing.any():
        return out
    raw = missing
    missing = cv2.morphologyEx(missing, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if depth_px is not None:
        depth = _crop(depth_px, roi)
    else:
        depth = cv2.distanceTransform(ideal, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(missing, connectivity=8)
    keep = np.zeros(n, bool)
    for k in range(1, n):
        if stats[k, cv2.CC_STAT_AREA] < min_area_px:
            continue
        x0, y0, w, h = (stats[k, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                              cv2.CC_STAT_HEIGHT))
        sel = labels[y0 : y0 + h, x0 : x0 + w] == k
        keep[k] = float(depth[y0 : y0 + h, x0 : x0 + w][sel].max()) >= min_depth_px
    chips = keep[labels]
    if chips.any():  # each chip grown back over its tapering ends (connected, past the outermost ring)
        grown = (chips | ((raw > 0) & (depth > TAPER_DEPTH_PX))).astype(np.uint8)
        m, glabels = cv2.connectedComponents(grown, connectivity=8)
        hit = np.zeros(m, bool)
        hit[glabels[chips]] = True
        hit[0] = False
        chips = hit[glabels]
    _crop(out, roi)[:] = chips
    return out


def below_threshold_to_good(
    class_mask: np.ndarray, confidence: np.ndarray, threshold: float, roi: Roi | None = None
) -> np.ndarray:
    """``class_mask`` with defect pixels whose probability is under ``threshold`` called good surface
    (the model's operating point). ``roi``: where defects can be (after :func:`on_part_only`)."""
    cm, conf = _crop(class_mask, roi), _crop(confidence, roi)
    weak = _is_defect(cm) & (conf < threshold)
    if not weak.any():
        return class_mask
    out = class_mask.copy()
    _crop(out, roi)[weak] = CLASS_IDS["good_surface"]
    return out


Box = tuple[float, float, float, float]


def clear_boxes(class_mask: np.ndarray, boxes: list[Box], keep: list[Box]) -> np.ndarray:
    """``class_mask`` with the defect pixels inside ``boxes`` (x0, y0, x1, y1; exclusive ends) called
    good surface, except where a box in ``keep`` covers them (a defect that stays)."""

    def span(b: Box) -> tuple[int, int, int, int]:
        return int(b[0]), int(b[1]), int(np.ceil(b[2])), int(np.ceil(b[3]))

    out = class_mask.copy()
    for x0, y0, x1, y1 in map(span, boxes):
        sel = _is_defect(out[y0:y1, x0:x1])
        for kx0, ky0, kx1, ky1 in map(span, keep):  # only the kept boxes that reach into this one
            ya, yb, xa, xb = max(ky0, y0), min(ky1, y1), max(kx0, x0), min(kx1, x1)
            if ya < yb and xa < xb:
                sel[ya - y0 : yb - y0, xa - x0 : xb - x0] = False
        out[y0:y1, x0:x1][sel] = CLASS_IDS["good_surface"]
    return out


def merge_chips(class_mask: np.ndarray, chips: np.ndarray) -> np.ndarray:
    """Label the geometric chips as chip in the class mask (they win over whatever was called there)."""
    if not chips.any():
        return class_mask
    out = class_mask.copy()
    out[chips] = CLASS_IDS["chip"]
    return out
