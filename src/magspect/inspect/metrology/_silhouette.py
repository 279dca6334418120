"""Find the part in a (back-lit) image: Otsu silhouette, largest contour, its holes.

Pixel convention (OpenCV's): pixel ``[row, col]`` is centred on ``(x, y) = (col, row)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class PartNotFoundError(RuntimeError):
    """No measurable part in the image (blank, too little contrast, too small, or cut off)."""


@dataclass(frozen=True)
class Silhouette:
    gray: np.ndarray  # float32 (H, W), the image as measured (any scale)
    mask: np.ndarray  # uint8 (H, W), 1 on the part (holes are 0)
    contour_xy_px: np.ndarray  # (N, 2) float, outer boundary pixels
    holes_xy_px: tuple[np.ndarray, ...]  # inner boundaries (a ring's bore)
    level_part: float  # mean grey of the part class
    level_background: float
    part_is_dark: bool
    saturated_fraction: float = 0.0  # share of pixels at the image's maximum: a clipped back-light biases edges

    @property
    def contrast(self) -> float:
        return abs(self.level_background - self.level_part)


def to_gray(image: np.ndarray) -> np.ndarray:
    """A float32 single-channel view of an image (channels averaged, no rescaling)."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = img[..., :3].astype(np.float32).mean(axis=2)
    elif img.ndim != 2:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    return img.astype(np.float32, copy=False)


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array; exact and fast from the histogram for unsigned integers."""
    if values.dtype not in (np.uint8, np.uint16):
        return float(np.median(values))
    cum = np.cumsum(np.bincount(values))
    n = int(cum[-1])
    k = n // 2  # the median's rank(s), 0-based: k (odd n) or k - 1 and k (even n)
    upper = int(np.searchsorted(cum, k + 1))  # the value at rank k
    lower = upper if n % 2 else int(np.searchsorted(cum, k))  # ... at rank k - 1
    return 0.5 * (lower + upper)


def find_part(
    image: np.ndarray, *, min_area_px: int = 400, min_separation: float = 6.0, hole_min_area_px: int = 100,
) -> Silhouette:
    """The largest connected part in the image, the side not touching the border being the part.

    Raises :class:`PartNotFoundError` when the two Otsu classes are not separated by at least
    ``min_separation`` pooled standard deviations (a blank or noise-only frame), when the largest
    blob is smaller than ``min_area_px``, or when it touches the image border (cut off: any
    dimension measured on it would be wrong).
    """
    gray = to_gray(image)
    h, w = gray.shape
    lo, hi, _, _ = cv2.minMaxLoc(gray)
    if hi - lo <= 0:
        raise PartNotFoundError("part not found: the image is uniform")
    # (gray - lo) * 255 / (hi - lo), truncated to uint8 as numpy's astype would (cv2 would round)
    raw = np.asarray(image)
    scale = np.float32(255.0 / (hi - lo))
    if raw.ndim == 2 and raw.dtype == np.uint8:  # the same float32 arithmetic once per grey level
        lut = np.empty(256, np.uint8)
        grey = np.clip(np.arange(256, dtype=np.float32), np.float32(lo), np.float32(hi))  # only lo..hi occur
        np.copyto(lut, (grey - np.float32(lo)) * scale, casting="unsafe")
        g8 = cv2.LUT(raw, lut)
    else:
        g8 = np.empty((h, w), np.uint8)
        np.copyto(g8, (gray - np.float32(lo)) * scale, casting="unsafe")
    g8 = cv2.GaussianBlur(g8, (0, 0), 1.0)
    thr, bright8 = cv2.threshold(g8, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n_bright = int(cv2.countNonZero(bright8))
    if n_bright < min_area_px or h * w - n_bright < min_area_px:
        raise PartNotFoundError("part not found: the image has a single grey level class")
    # class statistics on every other row and column: plenty of pixels for a 6-sigma test
    g_sub, b_sub = np.ascontiguousarray(gray[::2, ::2]), np.ascontiguousarray(bright8[::2, ::2])
    if cv2.countNonZero(b_sub) == 0 or cv2.countNonZero(b_sub) == b_sub.size:
        g_sub, b_sub = gray, bright8
    mean_b, std_b = (float(v[0, 0]) for v in cv2.meanStdDev(g_sub, mask=b_sub))
    mean_d, std_d = (float(v[0, 0]) for v in cv2.meanStdDev(g_sub, mask=1 - b_sub))
    pooled = np.sqrt(0.5 * (std_b**2 + std_d**2)) + 1e-12
    separation = (mean_b - mean_d) / pooled
    if separation < min_separation:
        raise PartNotFoundError(
            f"part not found: foreground/background separation {separation:.1f} sigma < {min_separation}"
        )
    border = np.concatenate([bright8[0], bright8[-1], bright8[:, 0], bright8[:, -1]])
    part_is_dark = border.mean() > 0.5
    part = (1 - bright8) if part_is_dark else bright8
    part = cv2.morphologyEx(part, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))

    contours, hierarchy = cv2.findContours(part, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    if not contours:
        raise PartNotFoundError("part not found: no foreground blob")
    hierarchy = hierarchy[0]
    outer = [i for i in range(len(contours)) if hierarchy[i][3] < 0]
    areas = [cv2.contourArea(contours[i]) for i in outer]
    k = outer[int(np.argmax(areas))]
    if max(areas) < min_area_px:
        raise PartNotFoundError(f"part not found: largest blob {max(areas):.0f} px < {min_area_px} px")
    cnt = contours[k][:, 0, :].astype(np.float64)
    x0, y0 = cnt.min(0)
    x1, y1 = cnt.max(0)
    if x0 <= 1 or y0 <= 1 or x1 >= w - 2 or y1 >= h - 2:
        raise PartNotFoundError("part not found whole: it touches the image border (cut off)")
    holes = []
    child = hierarchy[k][2]
    while child >= 0:
        if cv2.contourArea(contours[child]) >= hole_min_area_px:
            holes.append(contours[child][:, 0, :].astype(np.float64))
        child = hierarchy[child][0]
    mask = np.zeros((h, w), np.uint8)
    cv2.drawContours(mask, contours, k, 1, thickness=cv2.FILLED)
    for hole in holes:
        cv2.fillPoly(mask, [hole.astype(np.int32)], 0)
    # re-add hole boundary pixels (findContours' hole contour lies on part pixels)
    for hole in holes:
        mask[hole[:, 1].astype(int), hole[:, 0].astype(int)] = 1
    # the two grey levels: medians over every other row and column (plenty of pixels, 4x less work)
    sub = (slice(None, None, 2), slice(None, None, 2))
    # integer grey levels (raw): an exact median from their histogram, no sort
    levels = raw if raw.ndim == 2 and raw.dtype in (np.uint8, np.uint16) else gray
    part_px = levels[sub][mask[sub].astype(bool)]
    bg_px = levels[sub][~cv2.dilate(mask, np.ones((9, 9), np.uint8))[sub].astype(bool)]
    if part_px.size == 0 or bg_px.size == 0:  # a part of a pixel or two: use every pixel
        part_px, bg_px = levels[mask.astype(bool)], levels[~cv2.dilate(mask, np.ones((9, 9), np.uint8)).astype(bool)]
    return Silhouette(
        gray=gray, mask=mask, contour_xy_px=cnt, holes_xy_px=tuple(holes),
        level_part=_median(part_px), level_background=_median(bg_px),
        part_is_dark=bool(part_is_dark), saturated_fraction=float(np.count_nonzero(gray >= hi - 0.5)) / gray.size,
    )
