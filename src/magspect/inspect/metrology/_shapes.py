"""Per-shape measurement from a silhouette: coarse model, sub-pixel edges, robust refits."""

from __future__ import annotations

import cv2
import numpy as np

from magspect.inspect.metrology._edges import edge_points, stations_on_segment
from magspect.inspect.metrology._fit import (
    Circle,
    FitError,
    Line,
    angle_between_deg,
    fit_circle,
    fit_concentric,
    fit_line,
    fit_offset,
    intersect,
    line_circle_intersections,
    ransac_circle,
    ransac_line,
)
from magspect.inspect.metrology._result import OutlineEdge
from magspect.inspect.metrology._silhouette import PartNotFoundError, Silhouette

SEARCH_PX = 5.0  # half length of each edge profile
SPACING_PX = 0.5  # station spacing along an edge, in the last pass (the one measured)
PASSES = 2
#: Station spacing of the passes before the last, which only place the last pass's stations (4x
#: sparser: the same figures to four decimals in ``bench_metrology.py``, less time per view).
COARSE_SPACING_PX = 2.0


def _spacing(pass_index: int) -> float:
    return SPACING_PX if pass_index == PASSES - 1 else COARSE_SPACING_PX


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _edges(sil: Silhouette, stations: np.ndarray, normals: np.ndarray, half: float = SEARCH_PX) -> np.ndarray:
    pts, ok = edge_points(sil.gray, stations, normals, half_len_px=half, min_contrast=0.5 * sil.contrast)
    return pts[ok]


# ----------------------------------------------------------------------------------------------
# quadrilaterals (block top view, any side view)


def _order_quad(box: np.ndarray) -> np.ndarray:
    """Corners clockwise on screen (y down), starting with the top-left-most one."""
    c = box.mean(0)
    ang = np.arctan2(box[:, 1] - c[1], box[:, 0] - c[0])
    box = box[np.argsort(ang)]  # increasing angle = clockwise on screen
    start = int(np.argmin(box[:, 0] + box[:, 1]))
    return np.roll(box, -start, axis=0)


def fit_quad(sil: Silhouette, end_margin_px: float) -> tuple[list[Line], np.ndarray, dict[str, float]]:
    """Four robust side lines of a (chamfered) rectangle; side ``i`` joins corner ``i`` to ``i+1``.

    Returns the lines (outward normals), the virtual corners ``(4, 2)`` and residual rms per side.
    """
    box = _order_quad(cv2.boxPoints(cv2.minAreaRect(sil.contour_xy_px.astype(np.float32))).astype(np.float64))
    center = box.mean(0)
    corners = box
    lines: list[Line] = []
    prev: list[Line] | None = None
    rms: dict[str, float] = {}
    for pass_index in range(PASSES):
        lines = []
        for i in range(4):
            p0, p1 = corners[i], corners[(i + 1) % 4]
            u = _unit(p1 - p0)
            length = np.linalg.norm(p1 - p0)
            m = min(end_margin_px, 0.3 * length)
            st = stations_on_segment(p0 + m * u, p1 - m * u, _spacing(pass_index))
            n = np.array([u[1], -u[0]])
            if n @ (0.5 * (p0 + p1) - center) < 0:
                n = -n
            pts = _edges(sil, st, np.repeat(n[None], len(st), 0))
            if len(pts) < 10:
                raise PartNotFoundError(f"part not found: side {i + 1} has no clean edge ({len(pts)} points)")
            # start the IRLS from the side as known so far (the bounding box's side touches the
            # outermost part of the edge, which a chip, only ever removing material, cannot move)
            start = prev[i] if prev is not None else Line(normal=n, d_px=float(n @ p0))
            line = fit_line(pts, normal_hint=n, init=start)
            lines.append(line)
            rms[f"side_{i + 1}"] = line.rms_px
        prev = lines
        corners = np.array([intersect(lines[i - 1], lines[i]) for i in range(4)])
        center = corners.mean(0)
    return lines, corners, rms


SMALL_CHAMFER_PX = 3.5  # below this leg the bisector profiles straddle both blurred sides: use the area
CHIPPED_CORNER_PX = 20.0  # the leg reported for a corner chipped away entirely


def _corner_area(sil: Silhouette, la: Line, lb: Line, v: np.ndarray, r_flat: float = 7.0, r_out: float = 10.0):
    """The area (px², signed: noise can make it negative) that corner ``v`` of the lines ``la``, ``lb``
    (outward normals) lacks against a sharp corner, divided by half the sine of the corner's angle:
    the square of the chamfer's leg. None near the image border, inf where the corner is gone.

    The grey levels give each pixel's part coverage (local background plane and part level); the
    sharp corner's exact coverage minus it, summed under a smooth radial window centred on the
    virtual corner, is the chamfer triangle's area ``leg² sin(angle) / 2``. Both sides pass through
    the window's centre, so the blur moves coverage along the window's rim, not across it: the sum
    does not depend on the blur. Good for legs from 0 to a few px, where edge profiles cannot
    separate the chamfer from the two blurred sides.
    """
    g = sil.gray
    h, w = g.shape
    pad = r_out + 6.0
    x0, y0 = int(np.floor(v[0] - pad)), int(np.floor(v[1] - pad))
    x1, y1 = int(np.ceil(v[0] + pad)), int(np.ceil(v[1] + pad))
    if x0 < 0 or y0 < 0 or x1 >= w or y1 >= h:
        return None
    yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    gi = g[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    da = xx * la.normal[0] + yy * la.normal[1] - la.d_px
    db = xx * lb.normal[0] + yy * lb.normal[1] - lb.d_px
    rho = np.hypot(xx - v[0], yy - v[1])
    near = rho <= pad
    bg_sel = near & (np.maximum(da, db) >= 4.0)
    part_sel = near & (np.maximum(da, db) <= -4.0 - r_flat / 2)  # clear of a chamfer up to r_flat
    if bg_sel.sum() < 20:
        return None
    if part_sel.sum() < 10:  # no part near the corner at all: chipped away, nothing small about it
        return float("inf")
    a = np.column_stack([np.ones(bg_sel.sum()), xx[bg_sel] - v[0], yy[bg_sel] - v[1]])
    coef, *_ = np.linalg.lstsq(a, gi[bg_sel], rcond=None)
    bg = coef[0] + coef[1] * (xx - v[0]) + coef[2] * (yy - v[1])
    part = float(gi[part_sel].mean())
    if abs(part - sil.level_part) > 0.5 * sil.contrast:  # the corner's inside is background: chipped
        return float("inf")
    span = bg - part
    if np.min(np.abs(span)) < 0.25 * sil.contrast:
        return None
    cov_meas = (bg - gi) / span
    k = 8
    o = (np.arange(k) + 0.5) / k - 0.5
    ox, oy = np.meshgrid(o, o)
    sa = (ox * la.normal[0] + oy * la.normal[1]).ravel()
    sb = (ox * lb.normal[0] + oy * lb.normal[1]).ravel()
    cov_sharp = ((da[..., None] + sa <= 0) & (db[..., None] + sb <= 0)).mean(-1)
    t = np.clip((r_out - rho) / (r_out - r_flat), 0.0, 1.0)
    win = 0.5 - 0.5 * np.cos(np.pi * t)
    # pixels 5 px clear of both sides (and of the chamfer) hold no area to find, only noise
    win[(np.minimum(np.abs(da), np.abs(db)) > 5.0) & (rho > 6.0)] = 0.0
    area = float(np.sum(win * (cov_sharp - cov_meas)))
    sin_t = abs(la.normal[0] * lb.normal[1] - la.normal[1] * lb.normal[0])
    return 2.0 * area / max(sin_t, 1e-6)


def _chamfers(sil: Silhouette, lines: list[Line], corners: np.ndarray):
    """Chamfer leg (px) at each corner, and the chamfer end points on both sides."""
    legs, ends, leg2 = [], [], []
    cnt = sil.contour_xy_px
    for i in range(4):
        la, lb = lines[i - 1], lines[i]  # corner i joins side i-1 and side i
        v = corners[i]
        b = _unit(la.normal + lb.normal)
        near = np.linalg.norm(cnt - v, axis=1) < 40
        d0 = float(v @ b - np.max(cnt[near] @ b)) if near.any() else 0.0
        d0 = max(d0 - 0.5, 0.0)  # contour pixels lie half a pixel inside the edge
        fitted = None
        if d0 >= 1.5:
            u = np.array([-b[1], b[0]])
            q = v - d0 * b
            s = np.arange(-0.5 * d0, 0.5 * d0 + 1e-9, 0.25)
            st = q + s[:, None] * u
            pts = _edges(sil, st, np.repeat(b[None], len(st), 0), half=min(SEARCH_PX, max(2.5, d0)))
            if len(pts) >= 3:
                fitted = fit_offset(pts, b)
        if fitted is None:  # no measurable chamfer face: a sharp or a very small chamfer
            pa = pb = v
        else:
            pa, pb = intersect(la, fitted), intersect(lb, fitted)
        leg = 0.5 * (np.linalg.norm(pa - v) + np.linalg.norm(pb - v))
        sq = _corner_area(sil, la, lb, v) if leg < 2 * SMALL_CHAMFER_PX else None
        if sq is not None and sq < SMALL_CHAMFER_PX**2:
            leg = float(np.sign(sq) * np.sqrt(abs(sq)))  # signed: keeps noise around 0 unbiased
            pa = v + max(leg, 0.0) * _unit(corners[i - 1] - v)
            pb = v + max(leg, 0.0) * _unit(corners[(i + 1) % 4] - v)
        else:
            if sq is not None:  # more missing than a small chamfer: a chipped corner the profiles missed
                leg = max(leg, float(np.sqrt(sq)))
            sq = None
        legs.append(leg)
        leg2.append(np.nan if sq is None else sq)
        ends.append((pa, pb))
    return np.array(legs), ends, np.array(leg2)


def _consensus_leg(legs: np.ndarray, tol_px: float = 3.0) -> tuple[float, np.ndarray]:
    """Mean of the largest group of chamfer legs within ``tol_px`` of one of them; on a tie the group
    of shorter legs (a corner chip only ever lengthens the apparent chamfer). Two chipped corners
    of four leave no leg near the plain median, which would average nothing. A corner chipped away
    entirely (inf) never counts. Returns the mean and the group's mask."""
    legs = np.asarray(legs, float)
    if not np.isfinite(legs).any():
        legs = np.full(len(legs), CHIPPED_CORNER_PX)
    best = np.isfinite(legs)
    best_n = 0
    for a in np.sort(legs[np.isfinite(legs)]):
        grp = np.isfinite(legs) & (np.abs(legs - a) <= tol_px)
        if grp.sum() > best_n:
            best, best_n = grp, int(grp.sum())
    return float(np.mean(legs[best])), best


def measure_quad(sil: Silhouette, chamfer_hint_px: float = 0.0):
    """Block top view or any side view. Returns values in px/deg, outline, edges, corners, rms."""
    margin = max(3 * SEARCH_PX, 1.6 * chamfer_hint_px + SEARCH_PX)
    lines, corners, rms = fit_quad(sil, margin)
    side = [float(np.linalg.norm(corners[(i + 1) % 4] - corners[i])) for i in range(4)]
    s02 = 0.5 * (side[0] + side[2])  # mean length of sides 1 and 3 (corner to corner)
    s13 = 0.5 * (side[1] + side[3])
    angles = [180.0 - angle_between_deg(lines[i - 1].normal, lines[i].normal) for i in range(4)]
    legs, ends, leg2 = _chamfers(sil, lines, corners)
    chamfer, group = _consensus_leg(legs)
    if np.isfinite(leg2[group]).all():  # small chamfers: average the areas, then the root
        chamfer = float(np.sqrt(max(np.mean(leg2[group]), 0.0)))
    legs = np.clip(legs, 0.0, None)
    legs[~np.isfinite(legs)] = CHIPPED_CORNER_PX
    # the ideal outline carries the part's chamfer at every corner (a chipped corner is a defect)
    ends = []
    for i in range(4):
        v = corners[i]
        to_prev, to_next = _unit(corners[i - 1] - v), _unit(corners[(i + 1) % 4] - v)
        ends.append((v + chamfer * to_prev, v + chamfer * to_next))
    outline = []
    for i in range(4):
        pa, pb = ends[i]
        outline.extend([pa, pb] if np.linalg.norm(pa - pb) > 1e-6 else [pa])
    outline = np.array(outline)
    edges = tuple(
        OutlineEdge(i + 1, "line", np.array([ends[i][1], ends[(i + 1) % 4][0]])) for i in range(4)
    )
    # corners numbered as in messages: corner k ends side k; a chamfered corner is its chamfer's middle
    corner_pts = np.roll(np.array([0.5 * (a + b) for a, b in ends]), -1, axis=0)
    extras = {f"corner_{i + 1}_angle_deg": a for i, a in enumerate(np.roll(angles, -1))}
    extras.update({f"corner_{i + 1}_chamfer_px": float(c) for i, c in enumerate(np.roll(legs, -1))})
    values = {
        "long_px": max(s02, s13),
        "short_px": min(s02, s13),
        "sides_13_px": s02,  # sides numbered 1..4 as in messages
        "sides_24_px": s13,
        "sides_24_along_y": float(abs(corners[2][1] - corners[1][1]) > abs(corners[2][0] - corners[1][0])),
        "perpendicularity_deg": float(max(abs(a - 90.0) for a in angles)),
        "chamfer_px": chamfer,
    }
    return values, (outline,), edges, corner_pts, rms, extras


# ----------------------------------------------------------------------------------------------
# circles (disc, ring)


def _circle_stations(circ: Circle, a0: float = 0.0, a1: float = 2 * np.pi, margin_px: float = 0.0,
                     spacing_px: float = SPACING_PX):
    r = circ.radius_px
    da = margin_px / r
    n = max(16, int(np.ceil((a1 - a0 - 2 * da) * r / spacing_px)))
    endpoint = (a1 - a0) < 2 * np.pi - 1e-9
    ang = np.linspace(a0 + da, a1 - da, n, endpoint=endpoint)
    radial = np.column_stack([np.cos(ang), np.sin(ang)])
    return circ.center_xy_px + r * radial, radial


def refine_circle(sil: Silhouette, circ: Circle, outward: bool, a0=0.0, a1=2 * np.pi, margin_px=0.0) -> Circle:
    """Sub-pixel refit of a circle; ``outward``: the background is outside the circle."""
    for pass_index in range(PASSES):
        st, radial = _circle_stations(circ, a0, a1, margin_px, _spacing(pass_index))
        pts = _edges(sil, st, radial if outward else -radial)
        if len(pts) < 20:
            raise PartNotFoundError(f"part not found: circle has no clean edge ({len(pts)} points)")
        circ = fit_circle(pts, init=circ)
    return circ


def _circle_polygon(circ: Circle, n: int | None = None, a0=0.0, a1=2 * np.pi) -> np.ndarray:
    n = n or max(64, int((a1 - a0) * circ.radius_px / 2))
    full = abs(a1 - a0 - 2 * np.pi) < 1e-9
    ang = np.linspace(a0, a1, n, endpoint=not full)
    return circ.center_xy_px + circ.radius_px * np.column_stack([np.cos(ang), np.sin(ang)])


def measure_disc(sil: Silhouette):
    coarse = fit_circle(sil.contour_xy_px)
    circ = refine_circle(sil, Circle(coarse.center_xy_px, coarse.radius_px + 0.5), outward=True)
    poly = _circle_polygon(circ)
    return {"diameter_px": 2 * circ.radius_px}, (poly,), (OutlineEdge(1, "arc", poly),), np.empty((0, 2)), {
        "outer": circ.rms_px}, {"center_x_px": float(circ.center_xy_px[0]), "center_y_px": float(circ.center_xy_px[1])}


def measure_ring(sil: Silhouette):
    if not sil.holes_xy_px:
        raise PartNotFoundError("part not found as a ring: no bore visible")
    hole = max(sil.holes_xy_px, key=len)
    co = fit_circle(sil.contour_xy_px)
    ci = fit_circle(hole)
    outer = refine_circle(sil, Circle(co.center_xy_px, co.radius_px + 0.5), outward=True)
    inner = refine_circle(sil, Circle(ci.center_xy_px, ci.radius_px - 0.5), outward=False)
    po, pi = _circle_polygon(outer), _circle_polygon(inner)
    values = {
        "outer_diameter_px": 2 * outer.radius_px,
        "inner_diameter_px": 2 * inner.radius_px,
        "concentricity_px": float(np.linalg.norm(outer.center_xy_px - inner.center_xy_px)),
    }
    edges = (OutlineEdge(1, "arc", po), OutlineEdge(2, "arc", pi))
    return values, (po, pi), edges, np.empty((0, 2)), {"outer": outer.rms_px, "inner": inner.rms_px}, {}


# ----------------------------------------------------------------------------------------------
# arc segment (motor tile)


def _wrap(a: np.ndarray) -> np.ndarray:
    return (a + np.pi) % (2 * np.pi) - np.pi


def _coarse_arc(sil: Silhouette):
    cnt = sil.contour_xy_px
    ext = float(np.max(cnt.max(0) - cnt.min(0)))
    circ1, in1 = ransac_circle(cnt, thresh_px=1.5, r_range_px=(0.3 * ext, 50 * ext), seed=0)
    circ2, in2 = ransac_circle(cnt[~in1], thresh_px=1.5, r_range_px=(0.1 * ext, 50 * ext), seed=1)
    if np.linalg.norm(circ1.center_xy_px - circ2.center_xy_px) > 0.2 * circ1.radius_px:
        raise PartNotFoundError("part not found as an arc segment: its two arcs are not concentric")
    c1 = fit_circle(cnt[np.abs(circ1.distance_px(cnt)) < 1.5], init=circ1)
    c2 = fit_circle(cnt[np.abs(circ2.distance_px(cnt)) < 1.5], init=circ2)
    outer, inner = (c1, c2) if c1.radius_px > c2.radius_px else (c2, c1)
    center = 0.5 * (outer.center_xy_px + inner.center_xy_px)
    rest = cnt[(np.abs(outer.distance_px(cnt)) > 2.5) & (np.abs(inner.distance_px(cnt)) > 2.5)]
    mid = sil.mask.nonzero()
    mid_angle = float(np.arctan2(mid[0].mean() - center[1], mid[1].mean() - center[0]))
    rel = _wrap(np.arctan2(rest[:, 1] - center[1], rest[:, 0] - center[0]) - mid_angle)
    inside = np.array([mid[1].mean(), mid[0].mean()])  # the part's centroid (x, y)
    ends = []
    for k, sign in enumerate((-1, 1)):
        # the end face is the longest straight run on its side; a chip's flank (an edge chip's
        # contour is not near either circle either) must not seed or tilt the line
        pts = rest[np.sign(rel) == sign]
        if len(pts) < 10:
            raise PartNotFoundError("part not found as an arc segment: an end face is missing")
        seed_line, inl = ransac_line(pts, thresh_px=1.5, seed=k, support_xy=cnt, inside_xy=inside)
        if inl.sum() < 10:
            raise PartNotFoundError("part not found as an arc segment: an end face is not straight")
        ends.append(fit_line(pts[inl], min_scale=0.5, init=seed_line))
    return outer, inner, ends, center, mid_angle


def measure_arc(sil: Silhouette):
    outer, inner, ends, center, mid_angle = _coarse_arc(sil)
    rms: dict[str, float] = {}
    for pass_index in range(PASSES):
        # corners: each end line meets both circles; keep the intersection nearest the part
        corners = {}
        for k, line in enumerate(ends):
            for name, circ in (("o", outer), ("i", inner)):
                cand = line_circle_intersections(line, circ)
                if len(cand) == 0:
                    raise PartNotFoundError("part not found as an arc segment: an end does not meet an arc")
                rel = np.abs(_wrap(np.arctan2(cand[:, 1] - center[1], cand[:, 0] - center[0]) - mid_angle))
                corners[(k, name)] = cand[int(np.argmin(rel))]
        ang = {key: float(np.arctan2(p[1] - center[1], p[0] - center[0])) for key, p in corners.items()}
        a0 = mid_angle + _wrap(ang[(0, "o")] - mid_angle)
        a1 = mid_angle + _wrap(ang[(1, "o")] - mid_angle)
        b0 = mid_angle + _wrap(ang[(0, "i")] - mid_angle)
        b1 = mid_angle + _wrap(ang[(1, "i")] - mid_angle)
        st_o, rad_o = _circle_stations(outer, a0, a1, 3 * SEARCH_PX, _spacing(pass_index))
        st_i, rad_i = _circle_stations(inner, b0, b1, 3 * SEARCH_PX, _spacing(pass_index))
        pts_o, pts_i = _edges(sil, st_o, rad_o), _edges(sil, st_i, -rad_i)
        if len(pts_o) < 20 or len(pts_i) < 20:
            raise PartNotFoundError("part not found as an arc segment: an arc has no clean edge")
        outer, inner = fit_concentric(pts_o, pts_i, outer, inner)
        new_ends = []
        for k in range(len(ends)):
            p_in, p_out = corners[(k, "i")], corners[(k, "o")]
            u = _unit(p_out - p_in)
            st = stations_on_segment(p_in + 3 * SEARCH_PX * u, p_out - 3 * SEARCH_PX * u, _spacing(pass_index))
            n = np.array([u[1], -u[0]])
            tip = 0.5 * (p_in + p_out)
            side = _wrap(np.arctan2(tip[1] - center[1], tip[0] - center[0]) - mid_angle)
            tangent = np.array([-np.sin(mid_angle), np.cos(mid_angle)])  # direction of increasing angle
            if (n @ tangent) * np.sign(side) < 0:
                n = -n
            pts = _edges(sil, st, np.repeat(n[None], len(st), 0))
            if len(pts) < 10:
                raise PartNotFoundError(f"part not found as an arc segment: end {k + 1} has no clean edge")
            new_ends.append(fit_line(pts, normal_hint=n, init=ends[k]))
            rms[f"end_{k + 1}"] = new_ends[-1].rms_px
        ends = new_ends
        center = 0.5 * (outer.center_xy_px + inner.center_xy_px)
    rms.update(outer=outer.rms_px, inner=inner.rms_px)
    # final corners on the refined primitives
    corners = {}
    for k, line in enumerate(ends):
        for name, circ in (("o", outer), ("i", inner)):
            cand = line_circle_intersections(line, circ)
            if len(cand) == 0:
                raise PartNotFoundError("part not found as an arc segment: an end does not meet an arc")
            rel = np.abs(_wrap(np.arctan2(cand[:, 1] - center[1], cand[:, 0] - center[0]) - mid_angle))
            corners[(k, name)] = cand[int(np.argmin(rel))]
    dirs = [_unit(corners[(k, "o")] - corners[(k, "i")]) for k in range(2)]
    angle = angle_between_deg(dirs[0], dirs[1])
    chord = float(np.linalg.norm(corners[(0, "o")] - corners[(1, "o")]))

    def arc_pts(circ: Circle, p_from: np.ndarray, p_to: np.ndarray) -> np.ndarray:
        c = circ.center_xy_px
        t0 = np.arctan2(p_from[1] - c[1], p_from[0] - c[0])
        t1 = t0 + _wrap(np.arctan2(p_to[1] - c[1], p_to[0] - c[0]) - t0)
        n = max(16, int(abs(t1 - t0) * circ.radius_px / 2))
        t = np.linspace(t0, t1, n)
        return c + circ.radius_px * np.column_stack([np.cos(t), np.sin(t)])

    e_outer = arc_pts(outer, corners[(0, "o")], corners[(1, "o")])
    e_end2 = np.array([corners[(1, "o")], corners[(1, "i")]])
    e_inner = arc_pts(inner, corners[(1, "i")], corners[(0, "i")])
    e_end1 = np.array([corners[(0, "i")], corners[(0, "o")]])
    outline = np.vstack([e_outer, e_inner])
    edges = (
        OutlineEdge(1, "arc", e_outer), OutlineEdge(2, "line", e_end2),
        OutlineEdge(3, "arc", e_inner), OutlineEdge(4, "line", e_end1),
    )
    # corner k ends edge k: 1 outer/end 2, 2 inner/end 2, 3 inner/end 1, 4 outer/end 1
    corner_arr = np.array([corners[(1, "o")], corners[(1, "i")], corners[(0, "i")], corners[(0, "o")]])
    values = {
        "outer_radius_px": outer.radius_px,
        "inner_radius_px": inner.radius_px,
        "chord_px": chord,
        "angle_deg": angle,
    }
    extras = {"center_offset_px": float(np.linalg.norm(outer.center_xy_px - inner.center_xy_px))}
    return values, (outline,), edges, corner_arr, rms, extras


__all__ = ["FitError", "measure_arc", "measure_disc", "measure_quad", "measure_ring"]
