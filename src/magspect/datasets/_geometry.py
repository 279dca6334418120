"""Exact part outlines in millimetres and their analytically anti-aliased rasterisation.

An :class:`Outline` lives in the part's local frame (u right, v down, millimetres) and gives a
signed distance (negative inside) with the outward normal. :func:`coverage_field` evaluates it
only in the 8x8 tiles near the outline and computes each pixel's exact area coverage for the
locally straight edge: the pixel square projected on the edge normal is the sum of two uniform
variables, so the covered fraction is the CDF of a trapezoid. Straight edges are therefore exact
(area and sub-pixel position), circles are exact to the curvature term (~1e-4 px at R = 200 px).

Pixel convention: pixel (row i, column j) covers [j-0.5, j+0.5] x [i-0.5, i+0.5]; its centre is at
(x=j, y=i). The pose maps local millimetres to image pixels:
x = cx + (cos a * u - sin a * v) / s, y = cy + (sin a * u + cos a * v) / s, s = mm per pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Where the part's local origin lies in the image and how it is turned (y points down)."""

    cx_px: float
    cy_px: float
    angle_deg: float
    mm_per_px: float

    def to_px(self, uv: np.ndarray) -> np.ndarray:
        """Local (u, v) mm, shape (..., 2) -> image (x, y) px."""
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        u, v = uv[..., 0], uv[..., 1]
        x = self.cx_px + (c * u - s * v) / self.mm_per_px
        y = self.cy_px + (s * u + c * v) / self.mm_per_px
        return np.stack([x, y], axis=-1)

    def to_mm(self, xy: np.ndarray) -> np.ndarray:
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        dx, dy = xy[..., 0] - self.cx_px, xy[..., 1] - self.cy_px
        return np.stack([(c * dx + s * dy) * self.mm_per_px, (-s * dx + c * dy) * self.mm_per_px], axis=-1)


# ----------------------------------------------------------------------------------------- edges
@dataclass(frozen=True)
class Segment:
    p0: tuple[float, float]
    p1: tuple[float, float]

    @property
    def length(self) -> float:
        return math.hypot(self.p1[0] - self.p0[0], self.p1[1] - self.p0[1])

    def point(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points at arc length ``t`` (mm) and the inward unit normals there (outline is clockwise on screen)."""
        t = np.asarray(t, dtype=np.float64)
        d = np.array(self.p1) - np.array(self.p0)
        d /= np.linalg.norm(d)
        p = np.array(self.p0) + t[..., None] * d
        inward = np.broadcast_to(np.array([-d[1], d[0]]), p.shape)
        return p, inward


@dataclass(frozen=True)
class Arc:
    center: tuple[float, float]
    radius: float
    theta0: float  # radians, start
    theta1: float  # radians, end (may be < theta0)
    inward_sign: float = -1.0  # -1: the part lies inside the circle (convex edge), +1: outside (a hole)

    @property
    def length(self) -> float:
        return abs(self.theta1 - self.theta0) * self.radius

    def point(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.float64)
        th = self.theta0 + math.copysign(1.0, self.theta1 - self.theta0) * t / self.radius
        r = np.stack([np.cos(th), np.sin(th)], axis=-1)
        p = np.array(self.center) + self.radius * r
        return p, self.inward_sign * r


Edge = Segment | Arc


# -------------------------------------------------------------------------------------- outlines
@dataclass(frozen=True)
class Outline:
    """A part silhouette: half-planes and circles combined by max (an intersection of convex and
    concave primitives), plus its numbered edges and corners for zones and defect placement."""

    halfplanes: tuple[tuple[float, float, float], ...]  # (nu, nv, d): n.p - d <= 0 inside
    circles: tuple[tuple[float, float, float, float], ...]  # (cu, cv, r, sign): sign*(|p-c|-r) <= 0
    edges: tuple[Edge, ...]
    corners: tuple[tuple[float, float], ...]
    area_mm2: float
    bbox_mm: tuple[float, float, float, float]  # u0, v0, u1, v1

    def sdf(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Signed distance (mm, < 0 inside; exact near the outline) and the outward normal."""
        best = np.full(u.shape, -np.inf)
        nu = np.zeros(u.shape)
        nv = np.zeros(u.shape)
        for a, b, d in self.halfplanes:
            s = a * u + b * v - d
            m = s > best
            best = np.where(m, s, best)
            nu = np.where(m, a, nu)
            nv = np.where(m, b, nv)
        for cu, cv, r, sign in self.circles:
            du, dv = u - cu, v - cv
            rho = np.maximum(np.hypot(du, dv), 1e-12)
            s = sign * (rho - r)
            m = s > best
            best = np.where(m, s, best)
            nu = np.where(m, sign * du / rho, nu)
            nv = np.where(m, sign * dv / rho, nv)
        return best, nu, nv

    def contains(self, uv: np.ndarray) -> np.ndarray:
        return self.sdf(uv[..., 0], uv[..., 1])[0] < 0


def _trapezoid_cdf(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(a*U1 + b*U2 < x) for U1, U2 ~ U(-1/2, 1/2): a unit pixel's area below a line."""
    a, b = np.maximum(a, b), np.minimum(a, b)
    b = np.maximum(b, 1e-6)
    h1, h2 = (a + b) / 2, (a - b) / 2

    def q(t: np.ndarray) -> np.ndarray:
        t = np.maximum(t, 0.0)
        return t * t / 2

    ramp = (q(x + h1) - q(x + h2) - q(x - h2) + q(x - h1)) / (a * b)
    return np.clip(ramp, 0.0, 1.0)


def coverage_field(
    outline: Outline, pose: Pose, hw: tuple[int, int], band_px: float = 3.0, tile: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Exact area coverage (float32, 0..1) of ``outline`` at ``pose`` and the signed distance in px.

    The distance is exact within ``band_px`` of the outline and clipped to +-(band_px + tile) elsewhere.
    """
    h, w = hw
    ty, tx = -(-h // tile), -(-w // tile)
    half = (tile - 1) / 2
    gy, gx = np.meshgrid(np.arange(ty) * tile + half, np.arange(tx) * tile + half, indexing="ij")
    a = math.radians(pose.angle_deg)
    c, s, m = math.cos(a), math.sin(a), pose.mm_per_px

    def sdf_px(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        dx, dy = x - pose.cx_px, y - pose.cy_px
        d, nu, nv = outline.sdf((c * dx + s * dy) * m, (-s * dx + c * dy) * m)
        return d / m, c * nu - s * nv, s * nu + c * nv

    d_tile = sdf_px(gx, gy)[0]
    reach = half * math.sqrt(2) + 0.75 + band_px
    near = np.abs(d_tile) < reach
    big = band_px + tile
    sd = np.repeat(np.repeat(np.where(d_tile < 0, -big, big).astype(np.float32), tile, 0), tile, 1)
    cov = (sd < 0).astype(np.float32)
    iy, ix = np.nonzero(near)
    if iy.size:
        off = np.arange(tile, dtype=np.float64)
        py = (iy * tile)[:, None, None] + off[None, :, None] + np.zeros((1, 1, tile))
        px = (ix * tile)[:, None, None] + off[None, None, :] + np.zeros((1, tile, 1))
        d, nx, ny = sdf_px(px, py)
        cv = _trapezoid_cdf(-d, np.abs(nx), np.abs(ny))
        sd.reshape(ty, tile, tx, tile).transpose(0, 2, 1, 3)[iy, ix] = np.clip(d, -big, big)
        cov.reshape(ty, tile, tx, tile).transpose(0, 2, 1, 3)[iy, ix] = cv
    return cov[:h, :w], sd[:h, :w]


# ----------------------------------------------------------------------------- polygon rasterising
SUPERSAMPLE = 4
_SHIFT = 8


def polygon_coverage(
    polys_px: list[np.ndarray], roi: tuple[int, int, int, int], ss: int = SUPERSAMPLE
) -> np.ndarray:
    """Area coverage (float32) of polygons given in image px inside ``roi`` = (x0, y0, x1, y1).

    Rendered on an ``ss`` times finer grid and box-averaged: good to about 1/ss of a pixel.
    """
    import cv2

    x0, y0, x1, y1 = roi
    canvas = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.uint8)
    pts = []
    for p in polys_px:
        q = (np.asarray(p, np.float64) - [x0 - 0.5, y0 - 0.5]) * ss - 0.5
        pts.append(np.round(q * (1 << _SHIFT)).astype(np.int32))
    cv2.fillPoly(canvas, pts, 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return box_down(canvas, ss) / np.float32(255)


def box_down(canvas: np.ndarray, ss: int) -> np.ndarray:
    h, w = canvas.shape[0] // ss, canvas.shape[1] // ss
    return canvas.reshape(h, ss, w, ss).mean(axis=(1, 3), dtype=np.float32)


def clip_roi(
    x0: float, y0: float, x1: float, y1: float, hw: tuple[int, int], pad: int = 2
) -> tuple[int, int, int, int]:
    h, w = hw
    return (
        max(0, int(math.floor(x0)) - pad),
        max(0, int(math.floor(y0)) - pad),
        min(w, int(math.ceil(x1)) + pad + 1),
        min(h, int(math.ceil(y1)) + pad + 1),
    )


def polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def feret(p: np.ndarray) -> tuple[float, float]:
    """Longest extent of a point set and its extent across that direction (mm)."""
    d = p[:, None, :] - p[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    length = float(dist[i, j])
    if length == 0:
        return 0.0, 0.0
    axis = (p[j] - p[i]) / length
    perp = np.array([-axis[1], axis[0]])
    proj = p @ perp
    return length, float(proj.max() - proj.min())
