"""Rendered reference targets with exact truth: calibration boards and back-lit gauge silhouettes.

* :func:`render_chessboard` / :func:`render_charuco`: a planar board seen by a pinhole camera with
  lens distortion (``camera_matrix``, ``dist_coeffs``, ``rvec``, ``tvec``), or by a telecentric lens
  at a known ``um_per_px`` (``telecentric=True``). Truth: the projected inner corners.
* :func:`render_silhouette`: a back-lit block, disc, ring or arc segment at a known scale and pose,
  with exact partial-pixel edges, optical blur, noise and optional circular chips. Truth: the class
  mask (0 background, 1 part, 3 chip) and the chips' depth.

numpy + OpenCV only. Pixel ``[row, col]`` is centred on ``(x, y) = (col, row)`` (OpenCV's convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# ----------------------------------------------------------------------------------------------
# planar boards


@dataclass(frozen=True)
class BoardRender:
    image: np.ndarray  # uint8 (H, W)
    corners_xy_px: np.ndarray  # (N, 2) true inner-corner positions in the image, board order
    object_points_mm: np.ndarray  # (N, 3) the same corners on the board (z = 0)
    um_per_px: float | None = None  # telecentric renders only


def _chessboard_texture(cols: int, rows: int, px_per_square: int, margin_squares: int = 1) -> np.ndarray:
    """White-margined board with ``cols x rows`` inner corners; board origin at the first inner corner."""
    nx, ny = cols + 1 + 2 * margin_squares, rows + 1 + 2 * margin_squares
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    checks = ((ix + iy) % 2 == 0).astype(np.uint8)
    inside = (ix >= margin_squares) & (ix < nx - margin_squares) & (iy >= margin_squares) & (iy < ny - margin_squares)
    tex = np.where(inside, checks * 255, 255).astype(np.uint8)
    return cv2.resize(tex, (nx * px_per_square, ny * px_per_square), interpolation=cv2.INTER_NEAREST)


def _pixel_grid(size_wh: tuple[int, int], ss: int) -> np.ndarray:
    w, h = size_wh
    off = (np.arange(ss) + 0.5) / ss - 0.5
    xs = (np.arange(w)[:, None] + off[None]).ravel()
    ys = (np.arange(h)[:, None] + off[None]).ravel()
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx, gy], -1).astype(np.float64)  # (h*ss, w*ss, 2)


def _sample_board(tex: np.ndarray, tex_px_per_mm: float, origin_tex_px: float, board_xy_mm: np.ndarray,
                  ss: int, size_wh: tuple[int, int]) -> np.ndarray:
    # texture pixel k covers [k, k+1) in continuous texture coordinates; remap samples at centres
    u = (origin_tex_px + board_xy_mm[..., 0] * tex_px_per_mm - 0.5).astype(np.float32)
    v = (origin_tex_px + board_xy_mm[..., 1] * tex_px_per_mm - 0.5).astype(np.float32)
    out = cv2.remap(tex.astype(np.float32), u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    w, h = size_wh
    return out.reshape(h, ss, w, ss).mean(axis=(1, 3))


def _board_coords(size_wh, ss, *, telecentric, um_per_px, center_xy_px, angle_deg,
                  camera_matrix, dist_coeffs, rvec, tvec) -> np.ndarray:
    grid = _pixel_grid(size_wh, ss)
    if telecentric:
        a = np.radians(angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return ((grid - np.asarray(center_xy_px)) @ rot) * (um_per_px / 1000.0)  # R^T p, row vectors
    k = np.asarray(camera_matrix, np.float64)
    dist = np.zeros(5) if dist_coeffs is None else np.asarray(dist_coeffs, np.float64)
    pts = grid.reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-10)
    norm = cv2.undistortPoints(pts, k, dist, None, None, None, crit).reshape(-1, 2)
    rays = np.column_stack([norm, np.ones(len(norm))])
    r, _ = cv2.Rodrigues(np.asarray(rvec, np.float64))
    t = np.asarray(tvec, np.float64).reshape(3)
    n = r[:, 2]
    s = (n @ t) / (rays @ n)
    x_cam = rays * s[:, None]
    x_board = (x_cam - t) @ r  # R^T (X - t)
    return x_board[:, :2].reshape(grid.shape)


def _finish(img: np.ndarray, blur_px: float, noise: float, seed: int) -> np.ndarray:
    if blur_px > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_px)
    if noise > 0:
        img = img + np.random.default_rng(seed).normal(0, noise, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _project(obj: np.ndarray, telecentric, um_per_px, center_xy_px, angle_deg, camera_matrix, dist_coeffs,
             rvec, tvec) -> np.ndarray:
    if telecentric:
        a = np.radians(angle_deg)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return obj[:, :2] / (um_per_px / 1000.0) @ rot.T + np.asarray(center_xy_px)
    dist = np.zeros(5) if dist_coeffs is None else np.asarray(dist_coeffs, np.float64)
    proj, _ = cv2.projectPoints(obj, np.asarray(rvec, float), np.asarray(tvec, float),
                                np.asarray(camera_matrix, float), dist)
    return proj.reshape(-1, 2)


def render_chessboard(
    cols: int = 9, rows: int = 6, square_mm: float = 5.0, *, image_size_wh: tuple[int, int] = (640, 480),
    telecentric: bool = False, um_per_px: float = 100.0, center_xy_px: tuple[float, float] | None = None,
    angle_deg: float = 0.0, camera_matrix=None, dist_coeffs=None, rvec=(0.0, 0.0, 0.0), tvec=(0.0, 0.0, 300.0),
    blur_px: float = 0.6, noise: float = 2.0, seed: int = 0, supersample: int = 2,
) -> BoardRender:
    """A chessboard with ``cols x rows`` inner corners; the first inner corner is the board origin."""
    ppsq = 40
    tex = _chessboard_texture(cols, rows, ppsq)
    tex_ppm = ppsq / square_mm
    w, h = image_size_wh
    if center_xy_px is None:
        s = um_per_px / 1000
        center_xy_px = (w / 2 - cols * square_mm / 2 / s, h / 2 - rows * square_mm / 2 / s)
    xy = _board_coords(image_size_wh, supersample, telecentric=telecentric, um_per_px=um_per_px,
                       center_xy_px=center_xy_px, angle_deg=angle_deg, camera_matrix=camera_matrix,
                       dist_coeffs=dist_coeffs, rvec=rvec, tvec=tvec)
    img = _sample_board(tex, tex_ppm, 2 * ppsq, xy, supersample, image_size_wh)
    img = 40 + img * (200 / 255)
    gx, gy = np.meshgrid(np.arange(cols), np.arange(rows))
    obj = np.column_stack([gx.ravel() * square_mm, gy.ravel() * square_mm, np.zeros(gx.size)])
    corners = _project(obj, telecentric, um_per_px, center_xy_px, angle_deg, camera_matrix, dist_coeffs, rvec, tvec)
    return BoardRender(_finish(img, blur_px, noise, seed), corners, obj, um_per_px if telecentric else None)


def charuco_board(squares_x: int = 7, squares_y: int = 5, square_mm: float = 5.0, marker_mm: float = 3.5,
                  dictionary: str = "DICT_5X5_100") -> cv2.aruco.CharucoBoard:
    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    return cv2.aruco.CharucoBoard((squares_x, squares_y), square_mm, marker_mm, d)


def render_charuco(
    squares_x: int = 7, squares_y: int = 5, square_mm: float = 5.0, marker_mm: float = 3.5,
    dictionary: str = "DICT_5X5_100", *, image_size_wh: tuple[int, int] = (640, 480), telecentric: bool = False,
    um_per_px: float = 100.0, center_xy_px: tuple[float, float] | None = None, angle_deg: float = 0.0,
    camera_matrix=None, dist_coeffs=None, rvec=(0.0, 0.0, 0.0), tvec=(0.0, 0.0, 300.0),
    blur_px: float = 0.6, noise: float = 2.0, seed: int = 0, supersample: int = 2,
) -> BoardRender:
    """A ChArUco board; the board origin is its outer top-left corner (OpenCV's convention)."""
    board = charuco_board(squares_x, squares_y, square_mm, marker_mm, dictionary)
    ppsq, margin = 60, 60
    tex = board.generateImage((squares_x * ppsq + 2 * margin, squares_y * ppsq + 2 * margin), marginSize=margin)
    tex_ppm = ppsq / square_mm
    w, h = image_size_wh
    if center_xy_px is None:
        s = um_per_px / 1000
        center_xy_px = (w / 2 - squares_x * square_mm / 2 / s, h / 2 - squares_y * square_mm / 2 / s)
    xy = _board_coords(image_size_wh, supersample, telecentric=telecentric, um_per_px=um_per_px,
                       center_xy_px=center_xy_px, angle_deg=angle_deg, camera_matrix=camera_matrix,
                       dist_coeffs=dist_coeffs, rvec=rvec, tvec=tvec)
    img = _sample_board(tex, tex_ppm, margin, xy, supersample, image_size_wh)
    img = 40 + img * (200 / 255)
    obj = np.asarray(board.getChessboardCorners(), np.float64).reshape(-1, 3)
    corners = _project(obj, telecentric, um_per_px, center_xy_px, angle_deg, camera_matrix, dist_coeffs, rvec, tvec)
    return BoardRender(_finish(img, blur_px, noise, seed), corners, obj, um_per_px if telecentric else None)


# ----------------------------------------------------------------------------------------------
# back-lit gauge silhouettes


@dataclass(frozen=True)
class Chip:
    """A circular bite out of the part's outline, in the part frame (mm, origin at the part centre)."""

    center_mm: tuple[float, float]
    radius_mm: float


@dataclass(frozen=True)
class SilhouetteRender:
    image: np.ndarray  # uint8 (H, W): dark part on a bright back-light
    class_mask: np.ndarray  # uint8 (H, W): 0 background, 1 part, 3 chip (material missing)
    um_per_px: float
    dimensions_mm: dict[str, float]
    center_xy_px: tuple[float, float]
    angle_deg: float
    chip_depth_mm: tuple[float, ...] = field(default_factory=tuple)


def _signed_distance_mm(shape: str, dims: dict[str, float], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance (mm, negative inside) to the part outline, exact near straight and round edges."""
    if shape == "block":
        lh, wh, c = dims["length"] / 2, dims["width"] / 2, dims.get("chamfer", 0.0)
        ax, ay = np.abs(x), np.abs(y)
        d = np.maximum(ax - lh, ay - wh)
        if c > 0:
            d = np.maximum(d, (ax + ay - (lh + wh - c)) / np.sqrt(2))
        return d
    r = np.hypot(x, y)
    if shape == "disc":
        return r - dims["diameter"] / 2
    if shape == "ring":
        return np.maximum(r - dims["outer_diameter"] / 2, dims["inner_diameter"] / 2 - r)
    if shape == "arc":  # centre of curvature at the origin, segment symmetric about +y
        ro, ri, half = dims["outer_radius"], dims["inner_radius"], np.radians(dims["angle_deg"]) / 2
        d1 = x * np.cos(half) - y * np.sin(half)  # beyond the +x end face
        d2 = -x * np.cos(half) - y * np.sin(half)
        return np.maximum.reduce([r - ro, ri - r, d1, d2])
    raise ValueError(f"unknown shape {shape!r}")


def arc_dimensions(outer_radius: float, inner_radius: float, angle_deg: float) -> dict[str, float]:
    """Derived arc dimensions (thickness, chord of the outer arc) from its defining ones."""
    return {
        "outer_radius": outer_radius, "inner_radius": inner_radius, "angle_deg": angle_deg,
        "thickness": outer_radius - inner_radius,
        "chord": 2 * outer_radius * float(np.sin(np.radians(angle_deg) / 2)),
    }


def render_silhouette(
    shape: str, dimensions_mm: dict[str, float], *, um_per_px: float = 25.0,
    size_wh: tuple[int, int] = (1024, 768), center_xy_px: tuple[float, float] | None = None,
    angle_deg: float = 0.0, blur_px: float = 1.0, noise: float = 2.0, levels: tuple[float, float] = (30.0, 220.0),
    chips: tuple[Chip, ...] = (), seed: int = 0,
) -> SilhouetteRender:
    """A back-lit part: ``levels`` = (part, background) grey; partial-pixel edges, Gaussian blur, noise.

    Block dims: length (x), width (y), chamfer; disc: diameter; ring: outer/inner_diameter; arc:
    outer_radius, inner_radius, angle_deg (the centre of curvature is placed so the segment's
    middle sits at ``center_xy_px``). Side views are blocks with ``chamfer`` 0.
    """
    w, h = size_wh
    mm = um_per_px / 1000.0
    cx, cy = center_xy_px if center_xy_px is not None else (w / 2, h / 2)
    a = np.radians(angle_deg)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    dx, dy = (gx - cx) * mm, (gy - cy) * mm
    xp = np.cos(a) * dx + np.sin(a) * dy  # part frame (mm)
    yp = -np.sin(a) * dx + np.cos(a) * dy
    if shape == "arc":
        # middle of the radial wall at the image point: shift the centre of curvature below it
        yp = yp + 0.5 * (dimensions_mm["outer_radius"] + dimensions_mm["inner_radius"])
    d_ideal = _signed_distance_mm(shape, dimensions_mm, xp, yp)
    d = d_ideal.copy()
    depths = []
    for chip in chips:
        cxm, cym = chip.center_mm
        if shape == "arc":
            cym = cym + 0.5 * (dimensions_mm["outer_radius"] + dimensions_mm["inner_radius"])
        d = np.maximum(d, chip.radius_mm - np.hypot(xp - cxm, yp - cym))
        inside_chip = (np.hypot(xp - cxm, yp - cym) < chip.radius_mm) & (d_ideal < 0)
        depths.append(float(-d_ideal[inside_chip].min()) if inside_chip.any() else 0.0)
    cover = np.clip(0.5 - d / mm, 0.0, 1.0)
    ideal_cover = np.clip(0.5 - d_ideal / mm, 0.0, 1.0)
    part_lvl, bg_lvl = levels
    img = bg_lvl + (part_lvl - bg_lvl) * cover
    class_mask = np.zeros((h, w), np.uint8)
    class_mask[cover >= 0.5] = 1
    class_mask[(ideal_cover >= 0.5) & (cover < 0.5)] = 3
    return SilhouetteRender(
        image=_finish(img, blur_px, noise, seed), class_mask=class_mask, um_per_px=um_per_px,
        dimensions_mm=dict(dimensions_mm), center_xy_px=(cx, cy), angle_deg=angle_deg, chip_depth_mm=tuple(depths),
    )


__all__ = [
    "BoardRender",
    "Chip",
    "SilhouetteRender",
    "arc_dimensions",
    "charuco_board",
    "render_charuco",
    "render_chessboard",
    "render_silhouette",
]
