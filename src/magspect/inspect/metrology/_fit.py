"""Robust geometric fits in pixel coordinates: lines, circles, RANSAC seeds, intersections.

All points are ``(N, 2)`` float arrays of ``(x, y)`` in pixels. Robustness comes from iteratively
re-weighted least squares with Tukey's biweight (scale from the MAD), so a chip or a burr on an edge
gets zero weight instead of dragging the fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_TUKEY_C = 4.685
_CONVERGED_PX = 1e-5


class FitError(ValueError):
    """Too few or degenerate points to fit a primitive."""


@dataclass(frozen=True)
class Line:
    """The line ``n · p = d`` with unit normal ``n``; ``point_px`` is a point on it."""

    normal: np.ndarray  # (2,) unit
    d_px: float
    rms_px: float = 0.0
    n_inliers: int = 0

    @property
    def direction(self) -> np.ndarray:
        return np.array([-self.normal[1], self.normal[0]])

    def distance_px(self, pts_xy: np.ndarray) -> np.ndarray:
        """Signed distance of points to the line (positive on the normal's side)."""
        return pts_xy @ self.normal - self.d_px

    def project(self, pts_xy: np.ndarray) -> np.ndarray:
        return pts_xy - np.outer(self.distance_px(pts_xy), self.normal)


@dataclass(frozen=True)
class Circle:
    center_xy_px: np.ndarray  # (2,)
    radius_px: float
    rms_px: float = 0.0
    n_inliers: int = 0

    def distance_px(self, pts_xy: np.ndarray) -> np.ndarray:
        """Signed distance (positive outside the circle)."""
        return np.hypot(*(pts_xy - self.center_xy_px).T) - self.radius_px


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D float array without its generic-reduction overhead (the IRLS loops call
    it thousands of times per part on a few hundred points)."""
    n = x.size
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return 0.5 * float(p[k - 1] + p[k])


def tukey_weights(residuals: np.ndarray, min_scale: float = 0.02, center: bool = False,
                  scale_from: np.ndarray | None = None) -> np.ndarray:
    """Tukey biweights of residuals, scale from the MAD (floored at ``min_scale``).

    ``center``: measure residuals from their median (for the first weights from a starting model
    that may be offset as a whole, e.g. a circle whose centre is a few px off along its axis: without
    it every point could get zero weight).
    ``scale_from``: a boolean mask of the points the scale is estimated on (the current inliers).
    Estimated on all points, the MAD is the chips' spread as soon as a chip holds half an edge's
    points, and the chip then gets weight back.
    """
    residuals = np.asarray(residuals, float)
    if residuals.size == 0:
        return np.zeros(0)
    pool = residuals
    if scale_from is not None and np.count_nonzero(scale_from) >= 3:
        pool = residuals[scale_from]
    med = _median(pool)
    mad = _median(np.abs(pool - med))
    scale = max(1.4826 * mad, min_scale)
    u = (residuals - med if center else residuals) / (_TUKEY_C * scale)
    w = (1 - u**2) ** 2
    w[np.abs(u) >= 1] = 0.0
    return w


def _weighted_line(pts: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    sw = w.sum()
    if sw <= 0:
        raise FitError("all points rejected")
    c = (w[:, None] * pts).sum(0) / sw
    q = pts - c
    (sxx, sxy), (_, syy) = (w[:, None] * q).T @ q
    # the 2x2 scatter matrix's minor axis in closed form (np.linalg.eigh costs more than the fit):
    # the major axis lies at angle 0.5 * atan2(2 sxy, sxx - syy), the normal at right angles to it
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    n = np.array([-np.sin(theta), np.cos(theta)])
    return n, float(n @ c)


def fit_line(pts_xy: np.ndarray, n_iter: int = 15, normal_hint: np.ndarray | None = None,
             min_scale: float = 0.02, init: Line | None = None) -> Line:
    """Total-least-squares line with Tukey IRLS. ``normal_hint`` orients the returned normal;
    ``min_scale`` (px) floors the robust scale (use ~0.5 for integer contour pixels).

    ``init``: a robust starting line (e.g. the previous pass, or :func:`ransac_line`); the first
    weights come from the residuals to it. Without it the IRLS starts from the plain least-squares
    line, which a large outlier group (a chip's flank) can tilt beyond recovery.
    """
    pts = np.asarray(pts_xy, float)
    if len(pts) < 2:
        raise FitError(f"a line needs >= 2 points, got {len(pts)}")
    if init is None:
        n, d = _weighted_line(pts, np.ones(len(pts)))
        r = pts @ n - d
        w = tukey_weights(r, min_scale=0.5, center=True)
    else:  # trust the start: its near points set the scale, whatever share a chip holds
        n, d = np.asarray(init.normal, float), float(init.d_px)
        r = pts @ n - d
        w = tukey_weights(r, min_scale=0.5, scale_from=np.abs(r) < 1.5)
    if w.sum() <= 0:
        raise FitError("all points rejected")
    n_prev, d_prev = None, 0.0
    for _ in range(n_iter):
        n, d = _weighted_line(pts, w)
        if n_prev is not None and n @ n_prev < 0:  # an eigenvector's sign is arbitrary
            n, d = -n, -d
        r = pts @ n - d
        # converged once the line stops moving (1e-5 px, far below any tolerance here): the
        # weights' last digits change for many more iterations without moving it
        if n_prev is not None and abs(d - d_prev) < _CONVERGED_PX and np.abs(n - n_prev).max() < _CONVERGED_PX * 1e-3:
            break
        w_new = tukey_weights(r, min_scale=min_scale, scale_from=w > 0)
        if np.all(np.abs(w_new - w) <= 1e-6 + 1e-5 * np.abs(w)):  # np.allclose(w_new, w, atol=1e-6), cheaper
            break
        w, n_prev, d_prev = w_new, n, d
    if normal_hint is not None and n @ normal_hint < 0:
        n, d = -n, -d
    inl = w > 0
    rms = float(np.sqrt(np.mean(r[inl] ** 2))) if inl.any() else float("nan")
    return Line(normal=n, d_px=float(d), rms_px=rms, n_inliers=int(inl.sum()))


def fit_offset(pts_xy: np.ndarray, normal: np.ndarray, n_iter: int = 15) -> Line:
    """A line of fixed normal direction through the points (robust location of ``n · p``)."""
    pts = np.asarray(pts_xy, float)
    if len(pts) < 1:
        raise FitError("no points")
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    s = pts @ normal
    d = float(np.median(s))
    w = tukey_weights(s - d, min_scale=0.5)
    for _ in range(n_iter):
        if w.sum() <= 0:
            break
        d_new = float((w * s).sum() / w.sum())
        converged = abs(d_new - d) < _CONVERGED_PX
        d = d_new
        if converged:
            break
        w = tukey_weights(s - d, scale_from=w > 0)
    inl = w > 0
    rms = float(np.sqrt(np.mean((s[inl] - d) ** 2))) if inl.any() else float("nan")
    return Line(normal=normal, d_px=d, rms_px=rms, n_inliers=int(inl.sum()))


def _kasa(pts: np.ndarray, w: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    x, y = pts.T
    a = np.column_stack([x, y, np.ones_like(x)])
    b = x**2 + y**2
    if w is not None:
        sw = np.sqrt(w)
        a, b = a * sw[:, None], b * sw
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    cx, cy = sol[0] / 2, sol[1] / 2
    r2 = sol[2] + cx**2 + cy**2
    if not np.isfinite(r2) or r2 <= 0:
        raise FitError("degenerate circle")
    return np.array([cx, cy]), float(np.sqrt(r2))


def fit_circle(pts_xy: np.ndarray, n_iter: int = 20, init: Circle | None = None) -> Circle:
    """Geometric (orthogonal distance) circle fit, Gauss-Newton inside Tukey IRLS."""
    pts = np.asarray(pts_xy, float)
    if len(pts) < 3:
        raise FitError(f"a circle needs >= 3 points, got {len(pts)}")
    if init is None:
        c, r = _kasa(pts)
    else:
        c, r = np.asarray(init.center_xy_px, float), float(init.radius_px)
    w = tukey_weights(np.hypot(*(pts - c).T) - r, min_scale=0.5, center=True)
    prev = np.full(3, np.inf)
    for it in range(n_iter):
        for _ in range(3):  # Gauss-Newton steps at fixed weights
            dxy = pts - c
            rho = np.hypot(*dxy.T)
            rho = np.where(rho < 1e-9, 1e-9, rho)
            res = rho - r
            jac = np.column_stack([-dxy[:, 0] / rho, -dxy[:, 1] / rho, -np.ones_like(rho)])
            jw = jac * w[:, None]
            try:
                step = np.linalg.solve(jw.T @ jac, -(jw.T @ res))
            except np.linalg.LinAlgError as exc:
                raise FitError("degenerate circle") from exc
            c = c + step[:2]
            r = r + step[2]
        res = np.hypot(*(pts - c).T) - r
        if not np.isfinite(res).all():
            raise FitError("circle fit diverged")
        params = np.r_[c, r]
        if it > 2 and np.abs(params - prev).max() < _CONVERGED_PX:  # the circle stopped moving
            break
        prev = params
        w_new = tukey_weights(res, scale_from=w > 0)
        if it > 2 and np.allclose(w_new, w, atol=1e-6):
            break
        w = w_new
    inl = w > 0
    rms = float(np.sqrt(np.mean(res[inl] ** 2))) if inl.any() else float("nan")
    return Circle(center_xy_px=c, radius_px=float(r), rms_px=rms, n_inliers=int(inl.sum()))


def ransac_circle(
    pts_xy: np.ndarray, thresh_px: float = 1.5, n_hyp: int = 400, seed: int = 0,
    r_range_px: tuple[float, float] = (0.0, np.inf),
) -> tuple[Circle, np.ndarray]:
    """Best-supported circle among random 3-point hypotheses; returns it and the inlier mask."""
    pts = np.asarray(pts_xy, float)
    if len(pts) < 3:
        raise FitError("too few points for RANSAC")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pts), size=(n_hyp, 3))
    p1, p2, p3 = pts[idx[:, 0]], pts[idx[:, 1]], pts[idx[:, 2]]
    # circumcentre of each triple
    ax, ay = p1.T
    bx, by = p2.T
    cx, cy = p3.T
    den = 2 * (ax * (by - cy) + bx * (cy - ay) + cx * (ay - by))
    ok = np.abs(den) > 1e-6
    den = np.where(ok, den, 1.0)
    a2, b2, c2 = ax**2 + ay**2, bx**2 + by**2, cx**2 + cy**2
    ux = (a2 * (by - cy) + b2 * (cy - ay) + c2 * (ay - by)) / den
    uy = (a2 * (cx - bx) + b2 * (ax - cx) + c2 * (bx - ax)) / den
    rr = np.hypot(ax - ux, ay - uy)
    ok &= (rr >= r_range_px[0]) & (rr <= r_range_px[1])
    if not ok.any():
        raise FitError("no valid circle hypothesis")
    ux, uy, rr = ux[ok], uy[ok], rr[ok]
    best, best_count = 0, -1
    chunk = 64
    for s in range(0, len(rr), chunk):
        dist = np.abs(np.hypot(pts[None, :, 0] - ux[s:s + chunk, None], pts[None, :, 1] - uy[s:s + chunk, None])
                      - rr[s:s + chunk, None])
        counts = (dist < thresh_px).sum(1)
        k = int(np.argmax(counts))
        if counts[k] > best_count:
            best, best_count = s + k, int(counts[k])
    circ = Circle(center_xy_px=np.array([ux[best], uy[best]]), radius_px=float(rr[best]))
    inliers = np.abs(circ.distance_px(pts)) < thresh_px
    return circ, inliers


def ransac_line(pts_xy: np.ndarray, thresh_px: float = 1.5, n_hyp: int = 300, seed: int = 0,
                min_sep_px: float = 8.0, support_xy: np.ndarray | None = None,
                inside_xy: np.ndarray | None = None, outside_penalty: float = 10.0) -> tuple[Line, np.ndarray]:
    """Best-supported line among random 2-point hypotheses (points at least ``min_sep_px`` apart);
    returns it and the inlier mask. The longest straight run wins over a chip's jagged flank.

    With ``support_xy`` (e.g. the whole silhouette contour) and ``inside_xy`` (a point inside the
    part), the line is taken as a *supporting* line of the part: a chip only removes material, so
    the true edge has no part beyond it, and each support point more than ``thresh_px`` beyond a
    hypothesis costs it ``outside_penalty`` inliers. A long shallow chip whose flank is straighter
    than the intact rest of the edge would otherwise win on the count alone.
    """
    pts = np.asarray(pts_xy, float)
    if len(pts) < 2:
        raise FitError("too few points for RANSAC")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pts), size=(n_hyp, 2))
    p, q = pts[idx[:, 0]], pts[idx[:, 1]]
    dv = q - p
    length = np.hypot(*dv.T)
    ok = length >= min(min_sep_px, 0.5 * float(np.max(np.ptp(pts, axis=0))))
    if not ok.any():
        raise FitError("no valid line hypothesis")
    p, dv, length = p[ok], dv[ok], length[ok]
    normals = np.column_stack([-dv[:, 1], dv[:, 0]]) / length[:, None]
    offs = (normals * p).sum(1)
    if inside_xy is not None:  # orient every normal away from the part
        flip = normals @ np.asarray(inside_xy, float) > offs
        normals[flip] *= -1
        offs[flip] *= -1
    sup = None if support_xy is None or inside_xy is None else np.asarray(support_xy, float)
    best, best_score = 0, -np.inf
    chunk = 64
    for s in range(0, len(offs), chunk):
        nrm, off = normals[s:s + chunk].T, offs[s:s + chunk]
        score = (np.abs(pts @ nrm - off) < thresh_px).sum(0).astype(float)
        if sup is not None:
            score -= outside_penalty * (sup @ nrm - off > thresh_px).sum(0)
        k = int(np.argmax(score))
        if score[k] > best_score:
            best, best_score = s + k, float(score[k])
    line = Line(normal=normals[best], d_px=float(offs[best]))
    inliers = np.abs(line.distance_px(pts)) < thresh_px
    return line, inliers


def intersect(a: Line, b: Line) -> np.ndarray:
    """Intersection point of two lines (raises FitError if parallel)."""
    m = np.vstack([a.normal, b.normal])
    if abs(np.linalg.det(m)) < 1e-9:
        raise FitError("parallel lines do not intersect")
    return np.linalg.solve(m, np.array([a.d_px, b.d_px]))


def line_circle_intersections(line: Line, circle: Circle) -> np.ndarray:
    """The 0, 1 or 2 points where a line meets a circle, ``(k, 2)``."""
    foot = line.project(circle.center_xy_px[None])[0]
    h = abs(line.distance_px(circle.center_xy_px[None])[0])
    if h > circle.radius_px:
        return np.empty((0, 2))
    s = np.sqrt(max(circle.radius_px**2 - h**2, 0.0))
    return np.array([foot - s * line.direction, foot + s * line.direction])


def angle_between_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Unsigned angle between two direction vectors, degrees in [0, 180]."""
    c = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def fit_concentric(pts_a: np.ndarray, pts_b: np.ndarray, init_a: Circle, init_b: Circle,
                   n_iter: int = 20) -> tuple[Circle, Circle]:
    """Two circles sharing one centre (an arc segment's outer and inner arcs), Tukey IRLS."""
    pa, pb = np.asarray(pts_a, float), np.asarray(pts_b, float)
    if len(pa) < 3 or len(pb) < 3:
        raise FitError("concentric fit needs >= 3 points on each circle")
    c = 0.5 * (np.asarray(init_a.center_xy_px, float) + np.asarray(init_b.center_xy_px, float))
    # radii about the shared starting centre: two separately fitted short arcs can have centres
    # several px apart along the axis, which would offset every residual of one arc as a whole
    ra = float(np.median(np.hypot(*(pa - c).T)))
    rb = float(np.median(np.hypot(*(pb - c).T)))
    pts = np.vstack([pa, pb])
    is_a = np.r_[np.ones(len(pa), bool), np.zeros(len(pb), bool)]

    def resid(c, ra, rb):
        return np.hypot(*(pts - c).T) - np.where(is_a, ra, rb)

    w = np.ones(len(pts))
    w[is_a] = tukey_weights(resid(c, ra, rb)[is_a], min_scale=0.5, center=True)
    w[~is_a] = tukey_weights(resid(c, ra, rb)[~is_a], min_scale=0.5, center=True)
    prev = np.full(4, np.inf)
    for it in range(n_iter):
        if (w[is_a] > 0).sum() < 3 or (w[~is_a] > 0).sum() < 3:
            raise FitError("concentric fit: too few inliers on a circle")
        for _ in range(3):
            dxy = pts - c
            rho = np.maximum(np.hypot(*dxy.T), 1e-9)
            res = rho - np.where(is_a, ra, rb)
            jac = np.column_stack([-dxy[:, 0] / rho, -dxy[:, 1] / rho, -is_a.astype(float), -(~is_a).astype(float)])
            jw = jac * w[:, None]
            try:
                step = np.linalg.solve(jw.T @ jac, -(jw.T @ res))
            except np.linalg.LinAlgError as exc:
                raise FitError("degenerate concentric circles") from exc
            c = c + step[:2]
            ra, rb = ra + step[2], rb + step[3]
        res = resid(c, ra, rb)
        if not np.isfinite(res).all():
            raise FitError("concentric fit diverged")
        params = np.r_[c, ra, rb]
        if it > 2 and np.abs(params - prev).max() < _CONVERGED_PX:  # the circles stopped moving
            break
        prev = params
        w_new = np.empty_like(w)
        w_new[is_a] = tukey_weights(res[is_a], scale_from=w[is_a] > 0)
        w_new[~is_a] = tukey_weights(res[~is_a], scale_from=w[~is_a] > 0)
        if it > 2 and np.allclose(w_new, w, atol=1e-6):
            break
        w = w_new

    def rms(sel):
        m = sel & (w > 0)
        return float(np.sqrt(np.mean(res[m] ** 2))) if m.any() else float("nan")

    return (Circle(c.copy(), float(ra), rms(is_a), int((is_a & (w > 0)).sum())),
            Circle(c.copy(), float(rb), rms(~is_a), int((~is_a & (w > 0)).sum())))
