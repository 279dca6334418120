"""Defects with exact geometry in millimetres: where they lie, how big, and their truth numbers.

Geometry lives in the local frame (mm) of the view the defect is seen in. Sizes are drawn across
the spec's acceptance limits (a factor 0.35-1.5 of the limit that applies in the defect's zone) so
the gate has work near its thresholds; forbidden defects (``max_count: 0``) get their natural sizes.

Truth conventions (``magspect.types.Defect``):
- chip: ``length_mm`` along the edge (corner chips: the longer leg along an edge), ``depth_mm``
  the largest inward extent from the ideal outline in the view, ``width_mm`` = ``depth_mm`` (the
  extent across the edge as seen), ``area_mm2`` the material missing as seen in the view.
- crack: ``length_mm`` the skeleton length incl. branches, ``width_mm`` its widest opening,
  ``depth_mm`` how far it runs into the part (not visible), ``area_mm2`` length x width summed.
- coating flaws: ``length_mm`` the longest extent (pit: its diameter), ``width_mm`` across it,
  ``area_mm2`` the flaw's area, ``depth_mm`` the coating layers it goes through (0 for stains).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from magspect.datasets._geometry import Outline, feret, polygon_area
from magspect.specs import Spec

CLASS_WEIGHTS = {"crack": 0.3, "chip": 0.35, "coating_flaw": 0.35}
COATING_SUBTYPES = ("blister", "peel", "pit", "scratch", "rust", "stain")
BARE_SUBTYPES = ("pit", "rust", "stain")  # an uncoated part has no coating to blister or peel


@dataclass
class Stroke:
    """A crack or scratch branch: centreline points (mm), width (mm) and visibility (0..1) per point."""

    pts_mm: np.ndarray
    width_mm: np.ndarray
    vis: np.ndarray


@dataclass
class DefectGeom:
    class_name: str
    subtype: str
    view: str
    zone: str
    edge_index: int | None
    length_mm: float
    width_mm: float
    depth_mm: float
    area_mm2: float
    center_mm: tuple[float, float]
    polygon_mm: np.ndarray | None = None  # labelled region (chips: incl. the bitten-off part)
    bite_mm: np.ndarray | None = None  # chips: silhouette loss (reaches past the outline)
    strokes: list[Stroke] = field(default_factory=list)
    material: str | None = None
    seed: int = 0


# ------------------------------------------------------------------------------------ spec limits
def size_limit(spec: Spec, class_name: str, subtype: str | None, zone: str, attr: str) -> float | None:
    """The tightest per-instance limit on ``attr`` (e.g. "max_length_mm") for such a defect, or None."""
    vals = [getattr(r, attr) for r in spec.defects if r.matches(class_name, subtype, zone)]
    vals = [v for v in vals if v is not None]
    return min(vals) if vals else None


def _around(rng: np.random.Generator, limit: float | None, natural: tuple[float, float]) -> float:
    if limit is None:
        lo, hi = natural
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return float(limit * rng.uniform(0.35, 1.5))


# --------------------------------------------------------------------------------------- zones
def edge_distances(outline: Outline, p: np.ndarray) -> np.ndarray:
    out = []
    for e in outline.edges:
        if hasattr(e, "radius"):
            out.append(abs(math.hypot(p[0] - e.center[0], p[1] - e.center[1]) - e.radius))
        else:
            a, b = np.array(e.p0), np.array(e.p1)
            t = np.clip(np.dot(p - a, b - a) / max(np.dot(b - a, b - a), 1e-12), 0, 1)
            out.append(float(np.linalg.norm(p - (a + t * (b - a)))))
    return np.array(out)


def zone_at(outline: Outline, p: np.ndarray, spec: Spec, face_zone: str) -> tuple[str, int | None]:
    """Zone of a point: corner (within the spec's corner radius), edge (edge band) or the face."""
    if outline.corners:
        dc = np.hypot(*(np.array(outline.corners) - p).T)
        if dc.min() <= spec.zones.corner_radius_mm:
            return "corner", int(np.argmin(dc)) + 1
    de = edge_distances(outline, p)
    if de.min() <= spec.zones.edge_band_mm:
        return "edge", int(np.argmin(de)) + 1
    return face_zone, None


def region_metrics(
    poly: np.ndarray, outline: Outline, ref: np.ndarray | None = None, n: int = 220
) -> tuple[float, float, float, float]:
    """(area inside the part, largest inward depth, farthest rim point from ``ref``, grid step) of
    polygon ``poly`` (mm), on a fine grid: about 0.5 % accurate."""
    import cv2

    u0, v0 = poly.min(axis=0)
    u1, v1 = poly.max(axis=0)
    step = max(u1 - u0, v1 - v0) / n
    gu = u0 + (np.arange(int((u1 - u0) / step) + 2) + 0.5) * step
    gv = v0 + (np.arange(int((v1 - v0) / step) + 2) + 0.5) * step
    mask = np.zeros((gv.size, gu.size), np.uint8)
    q = np.round(((poly - [u0, v0]) / step - 0.5) * 256).astype(np.int32)
    cv2.fillPoly(mask, [q], 1, lineType=cv2.LINE_8, shift=8)
    uu, vv = np.meshgrid(gu, gv)
    d = outline.sdf(uu, vv)[0]
    inside = (mask > 0) & (d < 0)
    area = float(inside.sum() * step * step)
    depth = float((-d[inside]).max()) if inside.any() else 0.0
    rim = inside & (d > -1.5 * step)
    extent = 0.0
    if ref is not None and rim.any():
        extent = float(np.hypot(uu[rim] - ref[0], vv[rim] - ref[1]).max())
    return area, depth, extent, step


# ------------------------------------------------------------------------------------ builders
def _jagged(rng: np.random.Generator, k: int, amp: float) -> np.ndarray:
    """Smooth-ish random factor around 1 for k points (conchoidal fracture outline)."""
    x = np.cumsum(rng.normal(0, 1, k))
    x -= np.linspace(x[0], x[-1], k)
    x = x / (np.abs(x).max() + 1e-9)
    x = np.convolve(np.concatenate([x[-2:], x, x[:2]]), np.ones(5) / 5, "valid")
    return 1.0 + amp * x + rng.uniform(-amp / 12, amp / 12, k)


def make_chip(
    rng: np.random.Generator, spec: Spec, outline: Outline, view: str, face_zone: str, mm_per_px: float
) -> DefectGeom | None:
    at_corner = bool(outline.corners) and rng.random() < 0.35
    if at_corner:
        ci = int(rng.integers(len(outline.corners)))
        c = np.array(outline.corners[ci])
        zone, idx = "corner", ci + 1
        leg = max(_around(rng, size_limit(spec, "chip", "corner_chip", "corner", "max_length_mm"), (0.2, 1.2)),
                  4 * mm_per_px)
        k = 48
        phi = np.linspace(0, 2 * np.pi, k, endpoint=False)
        r = np.ones(k)
        for hm in range(1, 6):
            r += 0.3 / hm * rng.normal() * np.cos(hm * phi + rng.uniform(0, 2 * np.pi))
        r = leg * np.clip(r, 0.45, 1.6) * _jagged(rng, k, 0.06)
        poly = c + np.stack([np.cos(phi), np.sin(phi)], -1) * r[:, None]
        bite = c + np.stack([np.cos(phi), np.sin(phi)], -1) * (r * rng.uniform(0.35, 0.6))[:, None]
        area, depth, length, _ = region_metrics(poly, outline, ref=c)
        center = c
        subtype = "corner_chip"
    else:
        lengths = np.array([e.length for e in outline.edges])
        ei = int(rng.choice(len(lengths), p=lengths / lengths.sum()))
        edge = outline.edges[ei]
        zone, idx = "edge", ei + 1
        lim_l = size_limit(spec, "chip", "edge_chip", "edge", "max_length_mm")
        lim_d = size_limit(spec, "chip", "edge_chip", "edge", "max_depth_mm")
        length = max(_around(rng, lim_l, (0.2, 1.5)), 4 * mm_per_px)
        depth = max(_around(rng, lim_d, (0.05, 0.5)), 3 * mm_per_px)
        depth = min(depth, 0.8 * length)
        margin = spec.zones.corner_radius_mm + length / 2 + 0.05
        if edge.length <= 2 * margin:
            return None
        t0 = float(rng.uniform(margin, edge.length - margin))
        k = 36
        tau = np.linspace(-0.5, 0.5, k)
        peak = rng.uniform(-0.25, 0.25)  # shell-like chips are lopsided
        x = np.where(tau < peak, (tau - peak) / (peak + 0.5), (tau - peak) / (0.5 - peak))
        prof = np.clip(1 - np.abs(x) ** rng.uniform(1.2, 4.0), 0, 1) ** rng.uniform(0.4, 0.9)
        prof = prof * np.clip(_jagged(rng, k, 0.15), 0.5, 1.5)
        prof[0] = prof[-1] = 0.0
        prof *= depth / prof.max()
        ts = t0 + tau * length
        p_edge, inward = edge.point(ts)
        over = 3 * mm_per_px
        poly = np.concatenate([p_edge - over * inward, (p_edge + prof[:, None] * inward)[::-1]])
        s = rng.uniform(0.3, 0.6)
        bite = np.concatenate([p_edge - over * inward, (p_edge + s * prof[:, None] * inward)[::-1]])
        area, depth, _, _ = region_metrics(poly, outline)
        center = edge.point(np.array([t0]))[0][0]
        subtype = "edge_chip"
    if area <= 0:
        return None
    return DefectGeom("chip", subtype, view, zone, idx, length, depth, depth, area, tuple(center),
                      polygon_mm=poly, bite_mm=bite, material="fracture", seed=int(rng.integers(2**31)))


def _walk(rng: np.random.Generator, p0: np.ndarray, theta: float, length: float, step: float,
          outline: Outline, curl: float, kink_every_mm: float = 0.0) -> np.ndarray:
    """A path from ``p0``. Smooth (scratches: ``curl`` bends it gently) or, with ``kink_every_mm``,
    crack-like: straight runs that break at random kinks, with step-to-step wiggle on top."""
    n = max(3, int(length / step))
    pts = [p0]
    p = p0.copy()
    dtheta = 0.0
    for _ in range(n):
        if kink_every_mm > 0:
            if rng.random() < step / kink_every_mm:
                theta += rng.normal(0, 0.45)
            heading = theta + rng.normal(0, 0.35)
        else:
            dtheta = 0.7 * dtheta + rng.normal(0, curl)
            theta += dtheta
            heading = theta
        q = p + step * np.array([math.cos(heading), math.sin(heading)])
        if outline.sdf(np.array([q[0]]), np.array([q[1]]))[0][0] > -0.02:
            break
        p = q
        pts.append(p)
    return np.array(pts)


def make_stroke(rng: np.random.Generator, pts: np.ndarray, w0: float, taper: float, zig: float) -> Stroke:
    k = len(pts)
    s = np.linspace(0, 1, k)
    d = np.gradient(pts, axis=0)
    nrm = np.stack([-d[:, 1], d[:, 0]], -1) / (np.linalg.norm(d, axis=1, keepdims=True) + 1e-12)
    pts = pts + nrm * (rng.normal(0, zig, k))[:, None]  # intergranular zig-zag
    wfac = np.exp(np.convolve(rng.normal(0, 0.6, k + 8), np.ones(9) / 9, "valid"))
    width = np.clip(w0 * (1 - taper * s) * wfac, 0.15 * w0, w0)
    vis = np.clip(0.7 + 1.6 * np.convolve(rng.normal(0, 1, k + 14), np.ones(15) / 15, "valid"), 0.1, 1.0)
    return Stroke(pts, width, vis)


def stroke_length(s: Stroke) -> float:
    return float(np.linalg.norm(np.diff(s.pts_mm, axis=0), axis=1).sum())


def make_crack(
    rng: np.random.Generator, spec: Spec, outline: Outline, view: str, face_zone: str, mm_per_px: float,
    face_cracks_on_face: bool = True,
) -> DefectGeom | None:
    """A crack from an edge, a corner or (a quarter of them) the face. ``face_cracks_on_face=False``:
    magsynth-v1/-v2's face cracks, started 0.03 mm inside the outline like an edge crack."""
    w0 = float(math.exp(rng.uniform(math.log(0.005), math.log(0.05))))
    length = float(math.exp(rng.uniform(math.log(0.4), math.log(3.5))))
    step = mm_per_px * 0.6
    r = rng.random()
    if r < 0.25 and outline.corners:
        ci = int(rng.integers(len(outline.corners)))
        p0 = np.array(outline.corners[ci])
        sub = "corner_crack"
        theta = math.atan2(-p0[1], -p0[0]) + rng.normal(0, 0.35)
    elif r < 0.75:
        e = outline.edges[int(rng.integers(len(outline.edges)))]
        t = rng.uniform(0.1, 0.9) * e.length
        p, inward = e.point(np.array([t]))
        p0, inward = p[0], inward[0]
        sub = "edge_crack"
        theta = math.atan2(inward[1], inward[0]) + rng.normal(0, 0.45)
    else:
        u0, v0, u1, v1 = outline.bbox_mm
        p0 = np.array([rng.uniform(u0, u1), rng.uniform(v0, v1)])
        sub = "face_crack"
        theta = rng.uniform(0, 2 * math.pi)
        if outline.sdf(p0[:1], p0[1:])[0][0] > -0.3:
            return None
    if sub != "face_crack" or not face_cracks_on_face:
        p0 = _inside(outline, p0, 0.03)  # start just inside the outline
    kink = float(rng.uniform(0.08, 0.3))
    main = _walk(rng, p0, theta, length, step, outline, 0.0, kink)
    if len(main) < 4:
        return None
    strokes = [make_stroke(rng, main, w0, 0.7, 0.006)]
    for _ in range(int(rng.integers(0, 3))):
        i = int(rng.integers(len(main) // 5, max(len(main) // 5 + 1, 4 * len(main) // 5)))
        seg = main[min(i + 1, len(main) - 1)] - main[i]
        th = math.atan2(seg[1], seg[0]) + rng.choice([-1, 1]) * rng.uniform(0.4, 1.0)
        br = _walk(rng, main[i], th, length * rng.uniform(0.15, 0.45), step, outline, 0.0, kink)
        if len(br) >= 3:
            strokes.append(make_stroke(rng, br, strokes[0].width_mm[i] * 0.8, 0.8, 0.005))
    total = sum(stroke_length(s) for s in strokes)
    area = float(sum((np.linalg.norm(np.diff(s.pts_mm, axis=0), axis=1) * s.width_mm[1:]).sum() for s in strokes))
    wmax = float(max(s.width_mm.max() for s in strokes))
    zone, idx = zone_at(outline, p0, spec, face_zone)
    depth = float(rng.uniform(0.1, 1.5))
    return DefectGeom("crack", sub, view, zone, idx, total, wmax, depth, area, tuple(main[len(main) // 2]),
                      strokes=strokes, seed=int(rng.integers(2**31)))


def _inside(outline: Outline, p: np.ndarray, by: float) -> np.ndarray:
    d, nu, nv = outline.sdf(p[:1], p[1:])
    return p - (d[0] + by) * np.array([nu[0], nv[0]])


def _blob(rng: np.random.Generator, c: np.ndarray, r: float, rough: float, k: int = 48) -> np.ndarray:
    phi = np.linspace(0, 2 * np.pi, k, endpoint=False)
    rr = np.ones(k)
    for h in range(2, 7):
        rr += rough / h * rng.normal() * np.cos(h * phi + rng.uniform(0, 2 * np.pi))
    rr = r * np.clip(rr, 0.4, 1.8)
    return c + np.stack([np.cos(phi), np.sin(phi)], -1) * rr[:, None]


def make_coating_flaw(
    rng: np.random.Generator, spec: Spec, outline: Outline, view: str, face_zone: str, mm_per_px: float,
    subtype: str, coating_um: float,
) -> DefectGeom | None:
    u0, v0, u1, v1 = outline.bbox_mm
    for _ in range(20):
        c = np.array([rng.uniform(u0, u1), rng.uniform(v0, v1)])
        if outline.sdf(c[:1], c[1:])[0][0] < -0.15:
            break
    else:
        return None
    zone, idx = zone_at(outline, c, spec, face_zone)
    top_coat = coating_um / 1000 / 3
    strokes: list[Stroke] = []
    if subtype == "pit":
        dia = max(_around(rng, size_limit(spec, "coating_flaw", "pit", zone, "max_length_mm"), (0.05, 0.4)),
                  2.5 * mm_per_px)
        poly, depth, mat = _blob(rng, c, dia / 2, 0.08, 24), coating_um / 1000, "substrate"
    elif subtype == "blister":
        poly, depth, mat = _blob(rng, c, _around(rng, None, (0.08, 0.6)), 0.12, 32), 0.02, None
    elif subtype == "peel":
        poly, depth, mat = _blob(rng, c, _around(rng, None, (0.15, 1.2)), 0.5), top_coat, "under"
    elif subtype == "rust":
        poly, depth, mat = _blob(rng, c, _around(rng, None, (0.1, 1.0)), 0.45), 0.0, "rust"
    elif subtype == "stain":
        lim = size_limit(spec, "coating_flaw", "stain", zone, "max_area_mm2")
        a = _around(rng, lim, (0.05, 2.0))
        poly, depth, mat = _blob(rng, c, math.sqrt(a / math.pi), 0.35), 0.0, None
    elif subtype == "scratch":
        length = _around(rng, None, (0.4, 4.0))
        w = float(rng.uniform(0.02, 0.1))
        pts = _walk(rng, c, rng.uniform(0, 2 * math.pi), length, mm_per_px * 0.7, outline, 0.01)
        if len(pts) < 4:
            return None
        st = make_stroke(rng, pts, w, 0.3, 0.0005)
        st.vis[:] = np.maximum(st.vis, 0.7)
        strokes = [st]
        total = stroke_length(st)
        area = float((np.linalg.norm(np.diff(st.pts_mm, axis=0), axis=1) * st.width_mm[1:]).sum())
        return DefectGeom("coating_flaw", "scratch", view, zone, idx, total, float(st.width_mm.max()), top_coat,
                          area, tuple(c), strokes=strokes, material="under", seed=int(rng.integers(2**31)))
    else:
        raise ValueError(subtype)
    area = polygon_area(poly)
    if outline.sdf(poly[:, 0], poly[:, 1])[0].max() > 0:  # keep flaws on the face
        area = region_metrics(poly, outline)[0]
    length, width = feret(poly)
    return DefectGeom("coating_flaw", subtype, view, zone, idx, length, width, depth, area, tuple(c),
                      polygon_mm=poly, material=mat, seed=int(rng.integers(2**31)))
