"""A line that runs on past the part's outline lies on top of the part: a fibre, not a crack.

A crack is a fracture in the part: it ends where the part ends. A lint fibre lying across an edge
goes on over the fixture beyond it. When a crack candidate reaches the part's outline, this module
looks past the outline, where the candidate would go on, for a thin line that leaves the part there
(the image's ridges, dark or bright: the second derivatives across a line at the scale of a fibre),
and measures how far from the part it runs. A candidate whose line runs on at least
:data:`OFF_PART_RUN_PX` pixels past the outline is judged a look-alike (the Inspector dismisses it,
with the reason). A real crack's notch in the edge, blurred, reaches 5-7 px; the fibres that run on
reach 12-60 px (BENCHMARKS.md, "A crack ends where the part ends"). Where the background is dark
(dark-field light) a fibre is not seen off the part and nothing is dismissed.

numpy and OpenCV only. Every step works on a window around the candidate: a few milliseconds per
candidate near the outline (4-7 ms median on 2 cores, BENCHMARKS.md), nothing for the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from magspect.inspect.defect_measure import skeletonize
from magspect.types import CLASS_IDS, Defect

#: How far past the outline (px) a candidate's line must run on for it to be a fibre, not a crack.
OFF_PART_RUN_PX = 10.0
#: A candidate's end must come this close (px) to the part's outline to be looked past.
NEAR_OUTLINE_PX = 8.0
_RIDGE_SIGMA_PX = 1.5  # a fibre's width at the suite's scales: 0.012-0.03 mm at 12-25 um/px, blurred
_RIDGE_K = 2.5  # a ridge pixel: response above this many robust spreads of the background's
_MIN_OFF_PX = 2.0  # pixels nearer the part than this are the outline's own blur
_EXIT_RADIUS_PX = 5.0  # the line off the part must start within this of where the candidate leaves
_MAX_ANGLE_DEG = 40.0  # ... and go on roughly the candidate's way
_DIRECTION_REACH_PX = 15.0  # the candidate's direction at its end: its skeleton within this of it
_PAD_PX = 64


#: The end of every off-part dismissal's reason (``Defect.dismissed_because``): how they are told
#: from the verifier's.
FIBRE_REASON = "past the part's outline: a fibre lying over the edge, not a crack"


def near_outline(part_mask: np.ndarray, box_xyxy_px: tuple[float, float, float, float]) -> bool:
    """Whether the box, grown by :data:`NEAR_OUTLINE_PX`, holds any pixel off the part: the cheap
    test before a candidate is looked past."""
    x0, y0, x1, y1 = (int(v) for v in box_xyxy_px)
    r = int(NEAR_OUTLINE_PX) + 1
    return not np.all(part_mask[max(0, y0 - r) : y1 + r, max(0, x0 - r) : x1 + r])


def dismissed_off_part(d: Defect) -> bool:
    """Whether a dismissed candidate was dismissed here (a line running on off the part)."""
    return d.dismissed_because is not None and FIBRE_REASON in d.dismissed_because


@dataclass(frozen=True)
class OffPartLine:
    """A line found leaving the part where a candidate meets the outline."""

    run_px: float  # how far from the part it reaches
    polarity: str  # "dark" or "bright": darker or brighter than the background around it
    angle_deg: float  # between the candidate's direction at its end and the line off the part


def _gray(image: np.ndarray) -> np.ndarray:
    g = np.asarray(image)
    scale = 65535.0 if g.dtype == np.uint16 else 255.0 if g.dtype == np.uint8 else 1.0
    g = g.astype(np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    return g / scale


def _ridges(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dark, bright) line strength: the Hessian's larger eigenvalue, and minus its smaller one."""
    s = cv2.GaussianBlur(gray, (0, 0), _RIDGE_SIGMA_PX)
    dxx = cv2.Sobel(s, cv2.CV_32F, 2, 0, ksize=3)
    dyy = cv2.Sobel(s, cv2.CV_32F, 0, 2, ksize=3)
    dxy = cv2.Sobel(s, cv2.CV_32F, 1, 1, ksize=3)
    tr, disc = dxx + dyy, np.sqrt((dxx - dyy) ** 2 + 4 * dxy**2)
    return np.maximum((tr + disc) / 2, 0), np.maximum(-(tr - disc) / 2, 0)


def _end_and_direction(cand: np.ndarray, d_in: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The candidate's skeleton end nearest the outline and its direction there (pointing out of the
    candidate); None if no end comes within NEAR_OUTLINE_PX of the outline."""
    skel = skeletonize(cand)
    ys, xs = np.nonzero(skel)
    if len(xs) < 3:
        return None
    neighbours = cv2.filter2D(skel.astype(np.uint8), -1, np.ones((3, 3), np.float32), borderType=cv2.BORDER_CONSTANT)
    ends = np.flatnonzero(neighbours[ys, xs] == 2)  # itself and one neighbour
    if ends.size == 0:  # a closed loop or a blob: any skeleton pixel
        ends = np.arange(len(xs))
    i = ends[np.argmin(d_in[ys[ends], xs[ends]])]
    if d_in[ys[i], xs[i]] > NEAR_OUTLINE_PX:
        return None
    end = np.array([xs[i], ys[i]], np.float64)
    near = np.hypot(xs - end[0], ys - end[1]) <= _DIRECTION_REACH_PX
    pts = np.column_stack([xs[near], ys[near]]).astype(np.float64)
    if len(pts) < 4:
        return None
    centre = pts.mean(0)
    _, vecs = np.linalg.eigh(np.cov((pts - centre).T))
    u = vecs[:, -1]
    return end, (u if np.dot(u, end - centre) >= 0 else -u)


def line_off_part(
    image: np.ndarray,
    part_mask: np.ndarray,
    candidate: np.ndarray,
    box_xyxy_px: tuple[float, float, float, float],
) -> OffPartLine | None:
    """The line that leaves the part where ``candidate`` meets the outline, if there is one.

    ``image``: the view (gray or RGB, uint8/uint16/float); ``part_mask``: the part's silhouette
    (non-zero on the part), the image's shape; ``candidate``: the candidate's own pixels, boolean,
    the image's shape or the shape of its box ``box_xyxy_px`` (x0, y0, x1, y1; exclusive ends).
    None: the candidate does not reach the outline, runs along it, or nothing leaves the part there.
    """
    h, w = part_mask.shape[:2]
    x0, y0 = max(0, int(np.floor(box_xyxy_px[0]))), max(0, int(np.floor(box_xyxy_px[1])))
    x1, y1 = min(w, int(np.ceil(box_xyxy_px[2]))), min(h, int(np.ceil(box_xyxy_px[3])))
    if x1 <= x0 or y1 <= y0:
        return None
    if not near_outline(part_mask, (x0, y0, x1, y1)):
        return None
    wx0, wy0 = max(0, x0 - _PAD_PX), max(0, y0 - _PAD_PX)
    wx1, wy1 = min(w, x1 + _PAD_PX), min(h, y1 + _PAD_PX)
    cand = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    own = np.asarray(candidate, bool)
    own = own[y0:y1, x0:x1] if own.shape == (h, w) else own[: y1 - y0, : x1 - x0]
    cand[y0 - wy0 : y0 - wy0 + own.shape[0], x0 - wx0 : x0 - wx0 + own.shape[1]] = own
    part = (part_mask[wy0:wy1, wx0:wx1] > 0).astype(np.uint8)
    if not cand.any() or part.all() or not part.any():
        return None
    d_in = cv2.distanceTransform(part, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - part, cv2.DIST_L2, 3)
    found = _end_and_direction(cand, d_in)
    if found is None:
        return None
    end, u = found
    exit_xy = None  # where the candidate's line, carried on, leaves the part
    for t in np.arange(0.0, NEAR_OUTLINE_PX + 6.0, 0.5):
        ix, iy = int(round(end[0] + t * u[0])), int(round(end[1] + t * u[1]))
        if not (0 <= ix < part.shape[1] and 0 <= iy < part.shape[0]):
            return None
        if not part[iy, ix]:
            exit_xy = end + t * u
            break
    if exit_xy is None:  # it runs along the outline, or away from it
        return None
    background = d_out >= _MIN_OFF_PX + 1.0
    if background.sum() < 200:  # too little background in the window to know its texture
        return None
    yy, xx = np.mgrid[0 : part.shape[0], 0 : part.shape[1]]
    at_exit = np.hypot(xx - exit_xy[0], yy - exit_xy[1]) <= _EXIT_RADIUS_PX
    off = d_out >= _MIN_OFF_PX
    best: OffPartLine | None = None
    for polarity, strength in zip(("dark", "bright"), _ridges(_gray(image[wy0:wy1, wx0:wx1])), strict=True):
        bg = strength[background]
        med = float(np.median(bg))
        threshold = _RIDGE_K * (med + 1.4826 * float(np.median(np.abs(bg - med)))) + 1e-9
        n, labels = cv2.connectedComponents(((strength > threshold) & off).astype(np.uint8), connectivity=8)
        for j in np.unique(labels[at_exit & (labels > 0)]):
            ly, lx = np.nonzero(labels == j)
            v = np.column_stack([lx - exit_xy[0], ly - exit_xy[1]])
            v = v[np.hypot(v[:, 0], v[:, 1]) >= 3.0]  # its direction from where the candidate leaves
            if len(v) < 3:
                continue
            m = v.mean(0)
            angle = float(np.degrees(np.arccos(np.clip(np.dot(m, u) / (np.hypot(*m) + 1e-9), -1.0, 1.0))))
            if angle > _MAX_ANGLE_DEG:
                continue
            run = float(d_out[ly, lx].max())
            if best is None or run > best.run_px:
                best = OffPartLine(run_px=run, polarity=polarity, angle_deg=angle)
    return best


def split_lines_off_part(
    image: np.ndarray,
    part_mask: np.ndarray,
    class_mask: np.ndarray,
    defects: list[Defect],
    mm_per_px: float,
    run_px: float = OFF_PART_RUN_PX,
) -> tuple[list[Defect], list[Defect]]:
    """(kept, dismissed): crack candidates whose line runs on at least ``run_px`` past the part's
    outline are dismissed (``dismissed_because`` says how far it ran); everything else is kept.
    ``class_mask``: the segmentation the candidates were measured on (their pixels: their class
    within their box). ``run_px`` <= 0: nothing is dismissed."""
    if run_px <= 0:
        return list(defects), []
    crack = CLASS_IDS["crack"]
    kept: list[Defect] = []
    dismissed: list[Defect] = []
    for d in defects:
        line = None
        if d.class_name == "crack" and d.bbox_xyxy_px is not None:
            x0, y0, x1, y1 = (int(v) for v in d.bbox_xyxy_px)
            line = line_off_part(image, part_mask, class_mask[y0:y1, x0:x1] == crack, d.bbox_xyxy_px)
        if line is not None and line.run_px >= run_px:
            dismissed.append(d.model_copy(update={"dismissed_because": (
                f"a {line.polarity} line runs on {line.run_px * mm_per_px:.2f} mm ({line.run_px:.0f} px) "
                f"{FIBRE_REASON} (at least {run_px:g} px)")}))
        else:
            kept.append(d)
    return kept, dismissed


__all__ = [
    "FIBRE_REASON", "NEAR_OUTLINE_PX", "OFF_PART_RUN_PX", "OffPartLine", "dismissed_off_part", "line_off_part",
    "near_outline", "split_lines_off_part",
]
