"""Calibration end to end on rendered targets with known camera and scale."""

import json

import numpy as np
import pytest

from magspect.datasets.targets import render_charuco, render_chessboard
from magspect.inspect.calibration import (
    Calibration,
    CalibrationError,
    MissingCalibrationError,
    calibrate_camera,
    detect_chessboard,
    telecentric_calibration,
    with_scale,
)

K = np.array([[420.0, 0, 240], [0, 420.0, 180], [0, 0, 1]])
DIST = np.array([-0.18, 0.05, 0.0008, -0.0006, 0.0])
SIZE = (480, 360)


def _poses(n, seed, board_w, board_h):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        rv = rng.uniform(-0.45, 0.45, 3)
        rv[2] = rng.uniform(-0.3, 0.3)
        tv = np.array([-board_w / 2 + rng.uniform(-15, 15), -board_h / 2 + rng.uniform(-10, 10), rng.uniform(230, 290)])
        yield rv, tv


def test_chessboard_corners_found_at_subpixel_accuracy():
    rv, tv = next(_poses(1, 0, 160, 100))
    r = render_chessboard(9, 6, 20.0, image_size_wh=SIZE, camera_matrix=K, dist_coeffs=DIST, rvec=rv, tvec=tv)
    c = detect_chessboard(r.image, 9, 6)
    assert c is not None
    assert np.abs(c - r.corners_xy_px).max() < 0.15


def test_pinhole_intrinsics_and_distortion_recovered():
    imgs = [render_chessboard(9, 6, 20.0, image_size_wh=SIZE, camera_matrix=K, dist_coeffs=DIST, rvec=rv, tvec=tv,
                              seed=i).image for i, (rv, tv) in enumerate(_poses(5, 1, 160, 100))]
    cal = calibrate_camera(imgs, pattern="chessboard", cols=9, rows=6, square_mm=20.0)
    km = np.array(cal.camera_matrix)
    assert abs(km[0, 0] - 420) / 420 < 0.01 and abs(km[1, 1] - 420) / 420 < 0.01
    assert abs(km[0, 2] - 240) < 3 and abs(km[1, 2] - 180) < 3
    assert abs(cal.dist_coeffs[0] - DIST[0]) < 0.03
    assert cal.rms_reprojection_px < 0.2
    # the undistorted image maps the true corners onto a straight grid
    assert cal.undistort(imgs[0]).shape == imgs[0].shape


@pytest.mark.slow
def test_charuco_intrinsics_recovered():
    imgs = [render_charuco(7, 5, 25.0, 17.5, image_size_wh=SIZE, camera_matrix=K, dist_coeffs=DIST, rvec=rv,
                           tvec=tv, seed=i).image for i, (rv, tv) in enumerate(_poses(6, 2, 175, 125))]
    cal = calibrate_camera(imgs, pattern="charuco", cols=7, rows=5, square_mm=25.0, marker_mm=17.5)
    assert abs(cal.camera_matrix[0][0] - 420) / 420 < 0.02


@pytest.mark.parametrize("pattern", ["chessboard", "charuco"])
def test_telecentric_scale(pattern):
    if pattern == "chessboard":
        imgs = [render_chessboard(9, 6, 0.5, telecentric=True, um_per_px=18.5, angle_deg=a, image_size_wh=SIZE,
                                  seed=i).image for i, a in enumerate((3.0, -11.0))]
        kw = dict(cols=9, rows=6, square_mm=0.5)
    else:
        imgs = [render_charuco(7, 5, 2.0, 1.4, telecentric=True, um_per_px=40.0, angle_deg=7.0, image_size_wh=SIZE)
                .image]
        kw = dict(cols=7, rows=5, square_mm=2.0, marker_mm=1.4)
    cal = telecentric_calibration({"top": imgs}, pattern=pattern, **kw)
    truth = 18.5 if pattern == "chessboard" else 40.0
    assert abs(cal.scale_um_per_px("top") - truth) / truth < 2e-3


def test_save_load_roundtrip_and_id(tmp_path):
    cal = with_scale(None, "top", 25.0)
    cal2 = with_scale(cal, "side", 24.0)
    assert cal.id != cal2.id and cal.id.startswith("cal-")
    p = cal2.save(tmp_path / "calib.json")
    loaded = Calibration.load(p)
    assert loaded.id == cal2.id and loaded.scale_um_per_px("side") == 24.0
    # an edited file no longer matches its id
    data = json.loads(p.read_text())
    data["um_per_px"]["top"] = 26.0
    p.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="does not match"):
        Calibration.load(p)


def test_missing_view_and_bad_files(tmp_path):
    cal = with_scale(None, "top", 25.0)
    with pytest.raises(MissingCalibrationError, match="side"):
        cal.scale_um_per_px("side")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match="bad.json:1"):
        Calibration.load(bad)
    with pytest.raises(CalibrationError, match="cannot read"):
        Calibration.load(tmp_path / "missing.json")
    with pytest.raises(ValueError):
        with_scale(None, "top", -1.0)


def test_target_not_found_is_an_error():
    blank = [np.full((SIZE[1], SIZE[0]), 128, np.uint8)] * 3
    with pytest.raises(CalibrationError, match="found in 0 of 3"):
        calibrate_camera(blank, cols=9, rows=6, square_mm=20.0)
    with pytest.raises(CalibrationError, match="marker"):
        calibrate_camera(blank, pattern="charuco", cols=7, rows=5, square_mm=20.0)
