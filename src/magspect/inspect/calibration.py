"""Camera calibration: pinhole intrinsics + distortion from chessboard/ChArUco images, and the
scale (µm/px) of telecentric views. Saved as JSON with a content-hash id.

>>> # cal = calibrate_camera(images, pattern="chessboard", cols=9, rows=6, square_mm=5.0)
>>> # cal = telecentric_calibration({"top": [img]}, pattern="chessboard", cols=9, rows=6, square_mm=2.0)
>>> # cal.save("calib.json"); Calibration.load("calib.json").scale_um_per_px("top")
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

Pattern = Literal["chessboard", "charuco"]


class CalibrationError(ValueError):
    """Calibration failed or a calibration file is unusable (the message says why)."""


class MissingCalibrationError(CalibrationError):
    """No scale is known for a view: measuring it would be a guess, so fail closed."""


class Calibration(BaseModel):
    """One station's calibration. ``id`` is a hash of the content, so a record can cite it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    pattern: Pattern
    image_size_wh: tuple[int, int] | None = None
    camera_matrix: tuple[tuple[float, float, float], ...] | None = None  # 3x3, pinhole only
    dist_coeffs: tuple[float, ...] | None = None  # OpenCV order k1 k2 p1 p2 k3 ...
    rms_reprojection_px: float | None = None
    um_per_px: dict[str, float] = Field(default_factory=dict)  # per view (telecentric)
    um_per_px_std: dict[str, float] = Field(default_factory=dict)  # spread over the target images
    n_images: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def model_post_init(self, __context) -> None:  # noqa: ANN001
        for view, s in self.um_per_px.items():
            if not (s > 0 and np.isfinite(s)):
                raise ValueError(f"um_per_px[{view!r}] must be positive, got {s}")
        if not self.id:
            object.__setattr__(self, "id", self.content_id())

    def content_id(self) -> str:
        body = self.model_dump(mode="json", exclude={"id", "created_at"})
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        return f"cal-{digest[:16]}"

    # -- persistence
    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise CalibrationError(f"{path}: cannot read calibration: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise CalibrationError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
        try:
            cal = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first["loc"])
            raise CalibrationError(f"{path}: field '{field}': {first['msg']}") from None
        if cal.id != cal.content_id():
            raise CalibrationError(f"{path}: id {cal.id} does not match its content ({cal.content_id()}): edited?")
        return cal

    # -- use
    def scale_um_per_px(self, view: str) -> float:
        try:
            return self.um_per_px[view]
        except KeyError:
            known = ", ".join(sorted(self.um_per_px)) or "none"
            raise MissingCalibrationError(
                f"calibration {self.id} has no um_per_px for view {view!r} (calibrated views: {known})"
            ) from None

    def undistort(self, image: np.ndarray) -> np.ndarray:
        if self.camera_matrix is None or self.dist_coeffs is None:
            return image
        return cv2.undistort(image, np.array(self.camera_matrix), np.array(self.dist_coeffs))


# ----------------------------------------------------------------------------------------------
# detection


def _gray8(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
    if img.dtype != np.uint8:
        raise CalibrationError(f"calibration images must be 8-bit, got {img.dtype}")
    return img


def detect_chessboard(image: np.ndarray, cols: int, rows: int) -> np.ndarray | None:
    """Sub-pixel inner corners ``(cols*rows, 2)`` of a chessboard, or None when not found whole."""
    g = _gray8(image)
    ok, corners = cv2.findChessboardCornersSB(g, (cols, rows), flags=cv2.CALIB_CB_ACCURACY)
    if not ok:
        ok, corners = cv2.findChessboardCorners(g, (cols, rows), flags=cv2.CALIB_CB_ADAPTIVE_THRESH)
        if not ok:
            return None
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-4)
        corners = cv2.cornerSubPix(g, corners, (5, 5), (-1, -1), crit)
    return corners.reshape(-1, 2).astype(np.float64)


def chessboard_object_points(cols: int, rows: int, square_mm: float) -> np.ndarray:
    gx, gy = np.meshgrid(np.arange(cols), np.arange(rows))
    return np.column_stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)]) * np.array([square_mm, square_mm, 1.0])


def _charuco(cols: int, rows: int, square_mm: float, marker_mm: float, dictionary: str) -> cv2.aruco.CharucoBoard:
    try:
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, dictionary))
    except AttributeError:
        raise CalibrationError(f"unknown ArUco dictionary {dictionary!r} (e.g. DICT_5X5_100)") from None
    return cv2.aruco.CharucoBoard((cols, rows), square_mm, marker_mm, d)


def detect_charuco(image: np.ndarray, board: cv2.aruco.CharucoBoard, min_corners: int = 6):
    """``(object_points_mm (N, 3), image_points_px (N, 2))`` of the ChArUco corners seen, or None."""
    det = cv2.aruco.CharucoDetector(board)
    ch_corners, ch_ids, _, _ = det.detectBoard(_gray8(image))
    if ch_ids is None or len(ch_ids) < min_corners:
        return None
    obj, img = board.matchImagePoints(ch_corners, ch_ids)
    return obj.reshape(-1, 3).astype(np.float64), img.reshape(-1, 2).astype(np.float64)


def _points(images: Iterable[np.ndarray], pattern: Pattern, cols: int, rows: int, square_mm: float,
            marker_mm: float | None, dictionary: str):
    """Object/image point pairs for every image where the target is found; image size."""
    objs, imgs, size = [], [], None
    board = None
    if pattern == "charuco":
        if marker_mm is None:
            raise CalibrationError("a ChArUco board needs --marker-mm (the marker side length)")
        board = _charuco(cols, rows, square_mm, marker_mm, dictionary)
    elif pattern != "chessboard":
        raise CalibrationError(f"unknown pattern {pattern!r}; use chessboard or charuco")
    n_seen = 0
    for image in images:
        n_seen += 1
        h, w = np.asarray(image).shape[:2]
        if size is not None and size != (w, h):
            raise CalibrationError(f"all calibration images must have one size; got {size} and {(w, h)}")
        size = (w, h)
        if pattern == "chessboard":
            c = detect_chessboard(image, cols, rows)
            if c is not None:
                objs.append(chessboard_object_points(cols, rows, square_mm))
                imgs.append(c)
        else:
            found = detect_charuco(image, board)
            if found is not None:
                objs.append(found[0])
                imgs.append(found[1])
    if n_seen == 0:
        raise CalibrationError("no calibration images given")
    return objs, imgs, size, n_seen


def calibrate_camera(
    images: Sequence[np.ndarray], *, pattern: Pattern = "chessboard", cols: int = 9, rows: int = 6,
    square_mm: float = 5.0, marker_mm: float | None = None, dictionary: str = "DICT_5X5_100",
    min_images: int = 3,
) -> Calibration:
    """Pinhole intrinsics and distortion (k1 k2 p1 p2 k3) from several views of a planar target.

    ``cols``/``rows``: inner corners for a chessboard, squares for a ChArUco board.
    """
    objs, imgs, size, n_seen = _points(images, pattern, cols, rows, square_mm, marker_mm, dictionary)
    if len(objs) < min_images:
        raise CalibrationError(f"target found in {len(objs)} of {n_seen} images; need at least {min_images}")
    rms, k, dist, _, _ = cv2.calibrateCamera(
        [o.astype(np.float32) for o in objs], [i.astype(np.float32) for i in imgs], size, None, None
    )
    return Calibration(
        pattern=pattern, image_size_wh=size, camera_matrix=tuple(tuple(map(float, r)) for r in k),
        dist_coeffs=tuple(float(x) for x in np.ravel(dist)), rms_reprojection_px=float(rms), n_images=len(objs),
    )


def scale_from_target(obj_mm: np.ndarray, img_px: np.ndarray) -> tuple[float, float]:
    """µm/px of a telecentric view from one target image: a similarity fit board → image.

    Returns ``(um_per_px, rms_px)``; raises when the target is seen in perspective (the similarity
    residual is large), since a telecentric scale would then be wrong across the field.
    """
    src = obj_mm[:, :2].astype(np.float64)
    dst = img_px.astype(np.float64)
    # closed-form similarity (Umeyama) without reflection
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    dmat = np.diag([1.0, sign])
    rot = u @ dmat @ vt
    px_per_mm = float(np.trace(np.diag(sv) @ dmat) / (s0**2).sum(1).mean())
    resid = dst - (px_per_mm * s0 @ rot.T + md)
    return 1000.0 / px_per_mm, float(np.sqrt((resid**2).sum(1).mean()))


def telecentric_calibration(
    views: dict[str, Sequence[np.ndarray]], *, pattern: Pattern = "chessboard", cols: int = 9, rows: int = 6,
    square_mm: float = 1.0, marker_mm: float | None = None, dictionary: str = "DICT_5X5_100",
    max_rms_px: float = 0.5,
) -> Calibration:
    """Scale per telecentric view from images of a target of known pitch laid in the object plane."""
    scales: dict[str, float] = {}
    spread: dict[str, float] = {}
    n_total, size = 0, None
    for view, images in views.items():
        objs, imgs, size, n_seen = _points(images, pattern, cols, rows, square_mm, marker_mm, dictionary)
        if not objs:
            raise CalibrationError(f"view {view!r}: target not found in any of {n_seen} images")
        vals = []
        for o, i in zip(objs, imgs, strict=True):
            s, rms = scale_from_target(o, i)
            if rms > max_rms_px:
                raise CalibrationError(
                    f"view {view!r}: target residual {rms:.2f} px > {max_rms_px} px after a similarity fit; "
                    "is the lens telecentric and the target flat in the object plane?"
                )
            vals.append(s)
        scales[view] = float(np.mean(vals))
        spread[view] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        n_total += len(objs)
    return Calibration(pattern=pattern, image_size_wh=size, um_per_px=scales, um_per_px_std=spread, n_images=n_total)


def with_scale(cal: Calibration | None, view: str, um_per_px: float) -> Calibration:
    """A copy of ``cal`` (or a new scale-only calibration) with ``view``'s scale set; new id."""
    base = cal.model_dump(exclude={"id", "created_at"}) if cal is not None else {"pattern": "chessboard"}
    base["um_per_px"] = {**base.get("um_per_px", {}), view: float(um_per_px)}
    return Calibration.model_validate(base)


def merge(a: Calibration, b: Calibration) -> Calibration:
    """``a`` with ``b``'s per-view scales (and ``b``'s intrinsics, where ``b`` has them)."""
    data = a.model_dump(exclude={"id", "created_at"})
    data["um_per_px"] = {**a.um_per_px, **b.um_per_px}
    data["um_per_px_std"] = {**a.um_per_px_std, **b.um_per_px_std}
    if b.camera_matrix is not None:
        for k in ("camera_matrix", "dist_coeffs", "rms_reprojection_px", "image_size_wh"):
            data[k] = getattr(b, k)
    data["n_images"] = a.n_images + b.n_images
    return Calibration.model_validate(data)


__all__ = [
    "Calibration",
    "CalibrationError",
    "MissingCalibrationError",
    "calibrate_camera",
    "chessboard_object_points",
    "detect_charuco",
    "detect_chessboard",
    "merge",
    "scale_from_target",
    "telecentric_calibration",
    "with_scale",
]
