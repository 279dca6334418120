"""True part dimensions (drawn around a spec) and the outline each view sees.

Dimension names are exactly those of :mod:`magspect.specs.parts`. A few are derived from the
others so that the set is geometrically consistent: an arc's ``inner_radius`` and ``angle_deg``
follow from its outer radius, wall ``thickness`` and ``chord``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from magspect.datasets._geometry import Arc, Outline, Segment
from magspect.specs import Spec

#: Per shape, the dimensions drawn independently (the rest are derived).
_INDEPENDENT: dict[str, tuple[str, ...]] = {
    "block": ("length", "width", "thickness", "chamfer", "perpendicularity_deg"),
    "disc": ("diameter", "thickness"),
    "ring": ("outer_diameter", "inner_diameter", "thickness", "concentricity"),
    "arc": ("outer_radius", "thickness", "chord", "length"),
}


def derive(shape: str, dims: dict[str, float]) -> dict[str, float]:
    """Fill in the derived dimensions of ``shape`` from the independent ones."""
    d = dict(dims)
    if shape == "arc":
        ro, t, chord = d["outer_radius"], d["thickness"], d["chord"]
        d["inner_radius"] = ro - t
        d["angle_deg"] = math.degrees(2 * math.asin(min(1.0, chord / (2 * ro))))
    return d


def sample_dimensions(
    spec: Spec,
    rng: np.random.Generator,
    sigma_fraction: float,
    out_of_tolerance_rate: float,
    forced: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Draw one part's true dimensions: nominal + N(0, sigma_fraction * tol) for size dimensions,
    a half-normal for form errors, and with probability ``out_of_tolerance_rate`` one independent
    dimension pushed 5-60 % of its tolerance beyond a limit."""
    shape = spec.part.shape
    fam = spec.family
    dims: dict[str, float] = {}
    for name in _INDEPENDENT[shape]:
        ds = spec.dimensions[name]
        if fam.dimension(name).kind == "form":
            dims[name] = abs(float(rng.normal(0.0, sigma_fraction * ds.tol_plus)))
        else:
            tol = (ds.tol_plus + ds.tol_minus) / 2
            dims[name] = ds.nominal + float(rng.normal(0.0, sigma_fraction * tol))
    if rng.random() < out_of_tolerance_rate:
        name = _INDEPENDENT[shape][int(rng.integers(len(_INDEPENDENT[shape])))]
        ds = spec.dimensions[name]
        over = float(rng.uniform(0.05, 0.6))
        if fam.dimension(name).kind == "form" or rng.random() < 0.5:
            dims[name] = ds.upper + over * max(ds.tol_plus, 1e-3)
        else:
            dims[name] = ds.lower - over * max(ds.tol_minus, 1e-3)
    if forced:
        unknown = set(forced) - set(fam.names)
        if unknown:
            raise ValueError(f"a {shape} has no dimensions {sorted(unknown)}; it has {list(fam.names)}")
        derived_forced = set(forced) - set(_INDEPENDENT[shape])
        if shape == "arc" and derived_forced:
            # arcs: translate forced inner_radius / angle_deg into the independent set
            ro = forced.get("outer_radius", dims["outer_radius"])
            ri = forced.get("inner_radius", ro - forced.get("thickness", dims["thickness"]))
            ang = forced.get("angle_deg")
            dims["outer_radius"], dims["thickness"] = ro, ro - ri
            if ang is not None:
                dims["chord"] = 2 * ro * math.sin(math.radians(ang) / 2)
        dims.update({k: float(v) for k, v in forced.items() if k in _INDEPENDENT[shape]})
    dims["chamfer"] = max(dims["chamfer"], 0.0) if "chamfer" in dims else 0.0
    if shape != "block":
        dims.pop("chamfer")
    full = derive(shape, dims)
    return {name: round(float(full[name]), 6) for name in fam.names}


@dataclass(frozen=True)
class ViewGeometry:
    """What one view sees: the outline, the face's zone name and how its surface is shaded."""

    outline: Outline
    face_zone: str  # "pole_face" or "side_face"
    shading: str  # "flat" or "cylinder"
    cylinder_radius_mm: float = 0.0  # for "cylinder": radius of the surface seen (axis along v)
    chamfer_strip_mm: float = 0.0  # block side view: width of the chamfer faces at both ends
    origin: str = "centre"
    arc_axis_mm: tuple[float, float] | None = None


def _polygon_outline(pts: np.ndarray, edge_idx: list[tuple[int, int]], corners: list[int], area: float) -> Outline:
    """Convex polygon ``pts`` (clockwise on screen) as half-planes; ``edge_idx`` names the numbered edges."""
    n = len(pts)
    hps = []
    for i in range(n):
        p0, p1 = pts[i], pts[(i + 1) % n]
        d = (p1 - p0) / np.linalg.norm(p1 - p0)
        nrm = np.array([d[1], -d[0]])  # outward for a clockwise (screen) polygon
        hps.append((float(nrm[0]), float(nrm[1]), float(nrm @ p0)))
    edges = tuple(Segment(tuple(pts[a]), tuple(pts[b])) for a, b in edge_idx)
    u0, v0 = pts.min(axis=0)
    u1, v1 = pts.max(axis=0)
    return Outline(tuple(hps), (), edges, tuple(tuple(pts[i]) for i in corners), area, (u0, v0, u1, v1))


def _rectangle(w: float, h: float) -> Outline:
    pts = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    return _polygon_outline(pts, [(0, 1), (1, 2), (2, 3), (3, 0)], [1, 2, 3, 0], w * h)


def _block_top(d: Mapping[str, float]) -> Outline:
    length, width, c = d["length"], d["width"], d["chamfer"]
    p = math.radians(d["perpendicularity_deg"])
    a = np.array([length, 0.0])
    b = width * np.array([math.sin(p), math.cos(p)])
    p0 = -(a + b) / 2
    sharp = [p0, p0 + a, p0 + a + b, p0 + b]
    if c <= 1e-9:
        area = length * width * math.cos(p)
        return _polygon_outline(np.array(sharp), [(0, 1), (1, 2), (2, 3), (3, 0)], [1, 2, 3, 0], area)
    pts = []
    for i in range(4):
        prev, cur, nxt = sharp[i - 1], sharp[i], sharp[(i + 1) % 4]
        din = (cur - prev) / np.linalg.norm(cur - prev)
        dout = (nxt - cur) / np.linalg.norm(nxt - cur)
        pts += [cur - c * din, cur + c * dout]
    pts_a = np.array(pts)
    # vertices: 0,1 corner 0 chamfer; 2,3 corner 1; ... main edge i runs from 2i+1 to 2i+2
    area = length * width * math.cos(p) - 2 * c * c * math.cos(p)
    out = _polygon_outline(pts_a, [(1, 2), (3, 4), (5, 6), (7, 0)], [], area)
    mids = tuple(tuple((pts_a[2 * i] + pts_a[2 * i + 1]) / 2) for i in (1, 2, 3, 0))
    return Outline(out.halfplanes, out.circles, out.edges, mids, area, out.bbox_mm)


def _arc_top(d: Mapping[str, float]) -> tuple[Outline, tuple[float, float]]:
    ro, ri = d["outer_radius"], d["inner_radius"]
    half = math.radians(d["angle_deg"]) / 2
    ya = (ro + ri * math.cos(half)) / 2
    axis = (0.0, ya)
    tr, tl = -math.pi / 2 + half, -math.pi / 2 - half
    n_r = (-math.sin(tr), math.cos(tr))
    n_l = (math.sin(tl), -math.cos(tl))
    hps = ((n_r[0], n_r[1], n_r[1] * ya), (n_l[0], n_l[1], n_l[1] * ya))
    circles = ((0.0, ya, ro, 1.0), (0.0, ya, ri, -1.0))

    def at(r: float, t: float) -> tuple[float, float]:
        return (r * math.cos(t), ya + r * math.sin(t))

    edges = (
        Arc(axis, ro, tl, tr, -1.0),
        Segment(at(ro, tr), at(ri, tr)),
        Arc(axis, ri, tr, tl, 1.0),
        Segment(at(ri, tl), at(ro, tl)),
    )
    corners = (at(ro, tr), at(ri, tr), at(ri, tl), at(ro, tl))
    area = half * (ro * ro - ri * ri)
    w = ro * math.sin(half)
    bbox = (-w, ya - ro, w, ya - ri * math.cos(half))
    return Outline(hps, circles, edges, corners, area, bbox), axis


def view_geometry(shape: str, dims: Mapping[str, float], view: str) -> ViewGeometry:
    """The outline (local mm) and surface of ``view`` for a part of ``shape`` with ``dims``."""
    if view == "side":
        if shape == "block":
            return ViewGeometry(_rectangle(dims["length"], dims["thickness"]), "side_face", "flat",
                                chamfer_strip_mm=dims["chamfer"])
        if shape == "disc":
            return ViewGeometry(_rectangle(dims["diameter"], dims["thickness"]), "side_face", "cylinder",
                                dims["diameter"] / 2)
        if shape == "ring":
            return ViewGeometry(_rectangle(dims["outer_diameter"], dims["thickness"]), "side_face", "cylinder",
                                dims["outer_diameter"] / 2)
        if shape == "arc":
            return ViewGeometry(_rectangle(dims["chord"], dims["length"]), "pole_face", "cylinder",
                                dims["outer_radius"])
    elif view == "top":
        if shape == "block":
            return ViewGeometry(_block_top(dims), "pole_face", "flat")
        if shape == "disc":
            r = dims["diameter"] / 2
            ol = Outline((), ((0.0, 0.0, r, 1.0),), (Arc((0.0, 0.0), r, -math.pi, math.pi, -1.0),), (),
                         math.pi * r * r, (-r, -r, r, r))
            return ViewGeometry(ol, "pole_face", "flat")
        if shape == "ring":
            ro, ri = dims["outer_diameter"] / 2, dims["inner_diameter"] / 2
            e = dims["concentricity"]
            ol = Outline((), ((0.0, 0.0, ro, 1.0), (e, 0.0, ri, -1.0)),
                         (Arc((0.0, 0.0), ro, -math.pi, math.pi, -1.0), Arc((e, 0.0), ri, math.pi, -math.pi, 1.0)),
                         (), math.pi * (ro * ro - ri * ri), (-ro, -ro, ro, ro))
            return ViewGeometry(ol, "pole_face", "flat")
        if shape == "arc":
            ol, axis = _arc_top(dims)
            return ViewGeometry(ol, "side_face", "flat", origin="bbox_centre", arc_axis_mm=axis)
    raise ValueError(f"no geometry for shape {shape!r}, view {view!r}")
