"""Rasterise defects into a view: their labels (class and instance masks) and their look (maps).

Labels come from geometry, never from the rendered image. Thin strokes (cracks, scratches) are
labelled at least one pixel wide along their centreline, even where the true opening is narrower
than a pixel (a 5 µm crack at 25 µm/px): the pixels a crack crosses are the crack's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from magspect.datasets._defects import DefectGeom, Stroke
from magspect.datasets._geometry import Pose, box_down, clip_roi, polygon_coverage
from magspect.datasets._optics import Maps
from magspect.datasets._surfaces import MATERIALS, UNDERLAYER, channels
from magspect.types import CLASS_IDS

SS = 4


@dataclass
class ViewCanvas:
    """Everything a painter may change in one view."""

    pose: Pose
    hw: tuple[int, int]
    maps: Maps
    alpha_ideal: np.ndarray  # coverage of the ideal outline
    alpha: np.ndarray  # coverage after chips (the silhouette)
    class_mask: np.ndarray
    instance_mask: np.ndarray
    surface: str
    color: bool


def _blend_material(cv: ViewCanvas, roi: tuple[int, int, int, int], w: np.ndarray, name: str,
                    rng: np.random.Generator, grain_scale: float = 1.0) -> None:
    x0, y0, x1, y1 = roi
    mat = MATERIALS[name]
    g = 1.0 + mat.grain * grain_scale * rng.standard_normal(w.shape).astype(np.float32)
    ks = channels(mat.ks, cv.color) * g[..., None]
    kd = channels(mat.kd, cv.color) * g[..., None]
    w3 = w[..., None]
    m = cv.maps
    m.ks[y0:y1, x0:x1] = m.ks[y0:y1, x0:x1] * (1 - w3) + ks * w3
    m.kd[y0:y1, x0:x1] = m.kd[y0:y1, x0:x1] * (1 - w3) + kd * w3
    m.sharp[y0:y1, x0:x1] = m.sharp[y0:y1, x0:x1] * (1 - w) + mat.sharpness * w
    m.scatter[y0:y1, x0:x1] = m.scatter[y0:y1, x0:x1] * (1 - w) + mat.scatter * g * w


def _label(cv: ViewCanvas, roi: tuple[int, int, int, int], lab: np.ndarray, class_name: str, inst: int) -> int:
    x0, y0, x1, y1 = roi
    lab = lab & (cv.alpha_ideal[y0:y1, x0:x1] >= 0.5)
    cv.class_mask[y0:y1, x0:x1][lab] = CLASS_IDS[class_name]
    cv.instance_mask[y0:y1, x0:x1][lab] = inst
    return int(lab.sum())


def _roi(cv: ViewCanvas, pts_px: np.ndarray, pad: int = 3) -> tuple[int, int, int, int] | None:
    x0, y0 = pts_px.min(axis=0)
    x1, y1 = pts_px.max(axis=0)
    roi = clip_roi(x0, y0, x1, y1, cv.hw, pad)
    return roi if roi[2] > roi[0] and roi[3] > roi[1] else None


def _strokes_cov(cv: ViewCanvas, strokes: list[Stroke], roi: tuple[int, int, int, int],
                 min_label_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(render coverage x visibility, label coverage) of strokes in ``roi``."""
    x0, y0, x1, y1 = roi
    shape = ((y1 - y0) * SS, (x1 - x0) * SS)
    ren = np.zeros(shape, np.float32)
    lab = np.zeros(shape, np.uint8)
    m = cv.pose.mm_per_px
    sh = 4
    for s in strokes:
        p = cv.pose.to_px(s.pts_mm)
        q = np.round(((p - [x0 - 0.5, y0 - 0.5]) * SS - 0.5) * (1 << sh)).astype(np.int32)
        wpx = s.width_mm / m * SS
        for i in range(len(q) - 1):
            a, b = (int(q[i, 0]), int(q[i, 1])), (int(q[i + 1, 0]), int(q[i + 1, 1]))
            t = max(1, int(round(wpx[i])))
            val = float(min(1.0, wpx[i] / t) * s.vis[i])
            cv2.line(ren, a, b, val, t, cv2.LINE_8, sh)
            tl = max(t, int(round(min_label_px * SS)))
            cv2.line(lab, a, b, 1, tl, cv2.LINE_8, sh)
    return box_down(ren, SS), box_down(lab, SS)


def paint_defect(cv: ViewCanvas, d: DefectGeom, inst: int) -> tuple[int, tuple[int, int, int, int] | None]:
    """Paint one defect; returns (labelled pixel count, roi)."""
    rng = np.random.default_rng(d.seed)
    pose = cv.pose
    if d.class_name == "chip":
        poly = pose.to_px(d.polygon_mm)
        roi = _roi(cv, poly)
        if roi is None:
            return 0, None
        x0, y0, x1, y1 = roi
        full = polygon_coverage([poly], roi)
        bite = polygon_coverage([pose.to_px(d.bite_mm)], roi)
        ideal = cv.alpha_ideal[y0:y1, x0:x1]
        cv.alpha[y0:y1, x0:x1] *= 1 - bite
        face = np.clip(full - bite, 0, 1) * ideal
        _blend_material(cv, roi, face, "fracture", rng)
        return _label(cv, roi, np.minimum(full, ideal) >= 0.5, "chip", inst), roi
    if d.strokes:
        pts = np.concatenate([pose.to_px(s.pts_mm) for s in d.strokes])
        roi = _roi(cv, pts, pad=4)
        if roi is None:
            return 0, None
        x0, y0, x1, y1 = roi
        ren, lab = _strokes_cov(cv, d.strokes, roi, 1.0)
        ren *= cv.alpha_ideal[y0:y1, x0:x1]
        m = cv.maps
        if d.class_name == "crack":
            halo = cv2.GaussianBlur(ren, (0, 0), 1.2)
            m.sharp[y0:y1, x0:x1] *= np.clip(1 - 1.6 * ren - 0.5 * halo, 0, 1)
            m.kd[y0:y1, x0:x1] *= np.clip(1 - 0.9 * ren, 0, 1)[..., None]
            m.ks[y0:y1, x0:x1] *= np.clip(1 - 0.7 * ren - 0.2 * halo, 0, 1)[..., None]  # a gap returns less light
            m.scatter[y0:y1, x0:x1] += 2.2 * ren + 0.6 * halo
        else:  # scratch through the top coat: the under-layer shows, its edges scatter
            _blend_material(cv, roi, np.clip(ren, 0, 1), UNDERLAYER[cv.surface], rng, 0.5)
            edge = cv2.GaussianBlur(ren, (0, 0), 0.8) - 0.5 * ren
            m.scatter[y0:y1, x0:x1] += 1.5 * np.clip(edge, 0, None)
        return _label(cv, roi, lab >= 0.3, d.class_name, inst), roi
    poly = pose.to_px(d.polygon_mm)
    roi = _roi(cv, poly, pad=4)
    if roi is None:
        return 0, None
    x0, y0, x1, y1 = roi
    cov = polygon_coverage([poly], roi) * cv.alpha_ideal[y0:y1, x0:x1]
    lab = cov >= 0.5  # the label is the true polygon, whatever the look does at its rim
    c = pose.to_px(np.array(d.center_mm))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    r_px = max(0.5 * d.length_mm / pose.mm_per_px, 0.5)
    rho = np.hypot(xx - c[0], yy - c[1]) / r_px
    m = cv.maps
    sub = d.subtype
    if sub == "pit":
        _blend_material(cv, roi, cov, "substrate", rng)
        m.sharp[y0:y1, x0:x1] *= 1 - 0.9 * cov
        m.ks[y0:y1, x0:x1] *= (1 - 0.7 * cov)[..., None]
        m.scatter[y0:y1, x0:x1] += 1.2 * cov * np.clip(rho, 0, 1) ** 2
    elif sub == "blister":
        slope = np.clip(rho, 0, 1) ** 2 * cov
        m.sharp[y0:y1, x0:x1] *= 1 - 0.85 * slope
        m.scatter[y0:y1, x0:x1] += 0.8 * slope
        m.ks[y0:y1, x0:x1] *= (1 + 0.15 * cov * (1 - rho.clip(0, 1)))[..., None]
    elif sub == "peel":
        _blend_material(cv, roi, cov, UNDERLAYER[cv.surface], rng, 0.6)
        rim = np.clip(cov * (1 - cov) * 4, 0, 1)
        rim = cv2.GaussianBlur(rim, (0, 0), 1.0)
        m.scatter[y0:y1, x0:x1] += 1.4 * rim
        m.sharp[y0:y1, x0:x1] *= 1 - 0.7 * rim
    elif sub == "rust":
        mot = cv2.GaussianBlur(rng.random(cov.shape).astype(np.float32), (0, 0), 1.5)
        w = cov * np.clip(0.45 + 1.5 * (mot - mot.mean()) + 0.4, 0.2, 1.0)
        _blend_material(cv, roi, w, "rust", rng)
    elif sub == "stain":
        tint = channels((0.62, 0.52, 0.42), cv.color)
        k = float(rng.uniform(0.25, 0.5))
        mot = cv2.GaussianBlur(rng.random(cov.shape).astype(np.float32), (0, 0), 3.0)
        cov = cv2.GaussianBlur(cov, (0, 0), max(1.0, 0.04 * r_px)) * np.clip(0.6 + 4 * (mot - mot.mean()), 0.3, 1.2)
        m.ks[y0:y1, x0:x1] *= 1 - k * cov[..., None] * (1 - tint)
        m.kd[y0:y1, x0:x1] *= 1 - k * cov[..., None] * (1 - tint)
        m.sharp[y0:y1, x0:x1] *= 1 - 0.35 * cov
        m.scatter[y0:y1, x0:x1] += 0.15 * cov
    return _label(cv, roi, lab, "coating_flaw", inst), roi
