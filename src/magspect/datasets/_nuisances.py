"""Nuisances: things on or around a good part that are NOT defects and never enter the masks.

Dust specks, lint fibres (thin and curved: the classic false crack), dried water spots,
fingerprints (ridged, dull the specular), specular hot spots, and shadows cast by the fixture.
They change only the look (surface maps or a smooth multiplier on the whole image). Where each
local one lies is recorded (``truth["nuisances"]``: kind and pixel box), so training can show the
model the look-alikes it must not call defects, and evaluation can count false calls on them.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from magspect.datasets._geometry import clip_roi


def _disc(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, r: float) -> np.ndarray:
    """Soft (about 1 px) disc coverage."""
    return np.clip(r + 0.5 - np.hypot(xx - cx, yy - cy), 0.0, 1.0).astype(np.float32)


def _grid(roi: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = roi
    return np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))


def apply(
    cv,  # noqa: ANN001
    rng: np.random.Generator,
    lighting: str,
    um_per_px: float,
    face_level: float,
    record: list[dict] | None = None,
) -> np.ndarray:
    """Add nuisances to ``cv.maps``; return a multiplier for the background radiance (HxW).

    ``record``, when given, receives ``{"kind", "bbox_xyxy_px"}`` for each local nuisance that
    lands in the image (the random draws are the same with or without it: images don't change).
    """
    h, w = cv.hw

    def note(kind: str, roi: tuple[int, int, int, int]) -> None:
        if record is not None and roi[2] > roi[0] and roi[3] > roi[1]:
            record.append({"kind": kind, "bbox_xyxy_px": [int(v) for v in roi]})

    maps = cv.maps
    mul = np.ones(cv.hw, np.float32)
    px = 1000.0 / um_per_px  # px per mm
    # dust: small specks anywhere (on the part, on the fixture, on the backlight's glass)
    for _ in range(int(rng.integers(3, 25))):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = max(0.6, rng.uniform(0.008, 0.05) * px)
        roi = clip_roi(cx - r, cy - r, cx + r, cy + r, cv.hw)
        x0, y0, x1, y1 = roi
        xx, yy = _grid(roi)
        d = _disc(xx, yy, cx, cy, r)
        note("dust", roi)
        maps.ks[y0:y1, x0:x1] *= (1 - 0.7 * d)[..., None]
        maps.kd[y0:y1, x0:x1] *= (1 - 0.3 * d)[..., None]
        maps.scatter[y0:y1, x0:x1] += 1.2 * d
        mul[y0:y1, x0:x1] *= 1 - 0.6 * d
    # lint: a thin curved fibre lying on top, slightly out of focus
    for _ in range(int(rng.integers(0, 3))):
        n = 60
        length = rng.uniform(0.8, 4.0) * px
        th = rng.uniform(0, 2 * math.pi) + np.cumsum(rng.normal(0, 0.08, n))
        step = length / n
        pts = np.stack([np.cos(th), np.sin(th)], -1) * step
        pts = np.cumsum(pts, axis=0) + [rng.uniform(0, w), rng.uniform(0, h)]
        roi = clip_roi(*pts.min(axis=0), *pts.max(axis=0), cv.hw, pad=4)
        x0, y0, x1, y1 = roi
        if x1 <= x0 or y1 <= y0:
            continue
        canvas = np.zeros((y1 - y0, x1 - x0), np.float32)
        q = np.round((pts - [x0, y0]) * 16).astype(np.int32)
        width = max(1, int(round(rng.uniform(0.012, 0.03) * px)))
        cv2.polylines(canvas, [q], False, 1.0, width, cv2.LINE_AA, 4)
        canvas = cv2.GaussianBlur(canvas, (0, 0), 0.9)
        note("lint", roi)
        maps.scatter[y0:y1, x0:x1] += 0.9 * canvas
        maps.ks[y0:y1, x0:x1] *= (1 - 0.5 * canvas)[..., None]
        mul[y0:y1, x0:x1] *= 1 - 0.4 * canvas
    # water spots: faint rings with a slightly dulled inside
    for _ in range(int(rng.integers(0, 3))):
        cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.15 * h, 0.85 * h)
        r = rng.uniform(0.3, 1.5) * px
        roi = clip_roi(cx - r - 3, cy - r - 3, cx + r + 3, cy + r + 3, cv.hw)
        x0, y0, x1, y1 = roi
        xx, yy = _grid(roi)
        rho = np.hypot(xx - cx, yy - cy)
        ring = np.exp(-(((rho - r) / max(1.5, 0.03 * px)) ** 2)).astype(np.float32)
        inside = np.clip(r - rho, 0, 1).astype(np.float32)
        k = float(rng.uniform(0.04, 0.15))
        note("water_spot", roi)
        maps.scatter[y0:y1, x0:x1] += k * ring
        maps.sharp[y0:y1, x0:x1] *= 1 - k * ring - 0.03 * inside
    # fingerprint: elliptic patch of ridges (period ~0.45 mm) that dulls the specular
    if rng.random() < 0.3:
        cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
        ra, rb = rng.uniform(1.5, 3.0) * px, rng.uniform(1.0, 2.0) * px
        roi = clip_roi(cx - ra, cy - ra, cx + ra, cy + ra, cv.hw)
        x0, y0, x1, y1 = roi
        xx, yy = _grid(roi)
        ang = rng.uniform(0, math.pi)
        du = (xx - cx) * math.cos(ang) + (yy - cy) * math.sin(ang)
        dv = -(xx - cx) * math.sin(ang) + (yy - cy) * math.cos(ang)
        q = np.hypot(du / ra, dv / rb)
        env = np.clip(1.0 - q, 0, 1) ** 0.5
        ridges = 0.5 + 0.5 * np.sin(2 * math.pi * q * ra / (0.45 * px) + 0.6 * np.sin(du / (0.7 * px)))
        f = (env * ridges * (0.6 + 0.4 * rng.random(env.shape))).astype(np.float32)
        k = float(rng.uniform(0.06, 0.18))
        note("fingerprint", roi)
        maps.sharp[y0:y1, x0:x1] *= 1 - k * f
        maps.scatter[y0:y1, x0:x1] += 0.4 * k * f
    # specular hot spots (coaxial, dome): light source glints, bright and soft
    if lighting in ("coaxial", "dome") and rng.random() < 0.4:
        for _ in range(int(rng.integers(1, 3))):
            cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
            s = rng.uniform(0.3, 1.5) * px
            roi = clip_roi(cx - 3 * s, cy - 3 * s, cx + 3 * s, cy + 3 * s, cv.hw)
            x0, y0, x1, y1 = roi
            xx, yy = _grid(roi)
            g = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * s * s)).astype(np.float32)
            note("glint", roi)
            maps.add[y0:y1, x0:x1] += float(rng.uniform(0.1, 0.35)) * face_level * g * cv.alpha[y0:y1, x0:x1]
    # fixture shadow: a soft darkening band along one side of the field (not under a backlight)
    if lighting != "backlight" and rng.random() < 0.5:
        ang = rng.uniform(0, 2 * math.pi)
        nx, ny = math.cos(ang), math.sin(ang)
        yy, xx = np.ogrid[0:h, 0:w]
        dist = (xx - w / 2) * nx + (yy - h / 2) * ny - rng.uniform(0.3, 0.48) * min(h, w)
        soft = max(4.0, rng.uniform(0.1, 0.5) * px)
        shadow = 1.0 / (1.0 + np.exp(-dist / soft))
        mul *= (1 - rng.uniform(0.3, 0.7) * shadow).astype(np.float32)
    return mul
