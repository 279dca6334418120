"""Metrology against exactly rendered back-lit silhouettes (known truth, random poses)."""

import numpy as np
import pytest

from magspect.datasets.targets import Chip, arc_dimensions, render_silhouette
from magspect.inspect.metrology import PartNotFoundError, fit_circle, fit_line, measure_view, to_measurements
from magspect.types import MeasurementStatus

UM = 25.0
PX = UM / 1000.0  # mm per px

CASES = {
    "block": ("def-blk-20x10x5-nicuni", {"length": 20.03, "width": 9.98, "chamfer": 0.25}, (1000, 1000)),
    "disc": ("def-disc-d10-t3-nicuni", {"diameter": 10.02}, (560, 560)),
    "ring": ("com-ring-od20-id10-t5", {"outer_diameter": 19.97, "inner_diameter": 10.04}, (960, 960)),
    "arc": ("ev-arc-r30-r25-40deg", arc_dimensions(30.02, 24.98, 40.3), (1000, 640)),
}


def _errors_px(shape, n, seed=0):
    spec, dims, size = CASES[shape]
    rng = np.random.default_rng(seed)
    errs = {}
    for i in range(n):
        angle = rng.uniform(0, 360) if shape != "arc" else rng.uniform(-20, 20)
        c = (size[0] / 2 + rng.uniform(-8, 8), size[1] / 2 + rng.uniform(-8, 8))
        r = render_silhouette(shape, dims, um_per_px=UM, size_wh=size, center_xy_px=c, angle_deg=angle,
                              blur_px=rng.uniform(0.6, 1.2), noise=2.0, seed=seed * 100 + i)
        res = measure_view(r.image, spec, "top", UM)
        for k, v in res.values.items():
            truth = dims.get(k, 0.0)
            errs.setdefault(k, []).append((v - truth) if k.endswith("_deg") else (v - truth) / PX)
    return {k: np.array(v) for k, v in errs.items()}


@pytest.mark.parametrize("shape", ["block", "disc", "ring", "arc"])
def test_top_view_accuracy_within_target(shape):
    errs = _errors_px(shape, n=4)
    for name, e in errs.items():
        if name.endswith("_deg"):
            assert np.abs(e).max() < 0.02, (name, e)  # degrees
        elif name == "chamfer":  # an 10 px leg: looser
            assert np.abs(e).max() < 0.15, (name, e)
        else:
            assert np.abs(e).max() < 0.1, (name, e)  # px: the 0.1 px bias target with margin for 4 samples


def test_block_reports_perpendicularity_of_a_skewed_corner():
    # a parallelogram: render as a block whose width side leans by 0.5 deg is not supported by the
    # simple renderer; instead check a square corner reads near zero and the field is degrees
    r = render_silhouette("block", CASES["block"][1], um_per_px=UM, size_wh=(1000, 1000), angle_deg=33.0)
    res = measure_view(r.image, CASES["block"][0], "top", UM)
    assert 0 <= res.values["perpendicularity_deg"] < 0.02
    assert set(res.values) == {"length", "width", "chamfer", "perpendicularity_deg"}


def test_chip_does_not_drag_the_fit():
    dims = {"length": 20.0, "width": 10.0, "chamfer": 0.2}
    chips = (Chip((2.0, 5.0), 0.45), Chip((-4.0, -5.0), 0.3), Chip((10.0, 1.0), 0.35))
    r = render_silhouette("block", dims, um_per_px=UM, size_wh=(1000, 1000), angle_deg=12.0, chips=chips)
    res = measure_view(r.image, "def-blk-20x10x5-nicuni", "top", UM)
    assert abs(res.values["length"] - 20.0) / PX < 0.1
    assert abs(res.values["width"] - 10.0) / PX < 0.1


def test_side_view_thickness_and_arc_length():
    r = render_silhouette("block", {"length": 20.0, "width": 5.012}, um_per_px=UM, size_wh=(1000, 400), angle_deg=2.5)
    res = measure_view(r.image, "def-blk-20x10x5-nicuni", "side", UM)
    assert set(res.values) == {"thickness"}
    assert abs(res.values["thickness"] - 5.012) / PX < 0.1
    # arc side view: chord along x, axial length along y (the station's convention)
    r = render_silhouette("block", {"length": 20.52, "width": 19.96}, um_per_px=UM, size_wh=(1000, 1000), angle_deg=-3)
    res = measure_view(r.image, "ev-arc-r30-r25-40deg", "side", UM)
    assert abs(res.values["length"] - 19.96) / PX < 0.1


def test_scale_is_applied_not_guessed():
    dims = {"diameter": 10.0}
    r = render_silhouette("disc", dims, um_per_px=20.0, size_wh=(640, 640))
    right = measure_view(r.image, "def-disc-d10-t3-nicuni", "top", 20.0).values["diameter"]
    wrong = measure_view(r.image, "def-disc-d10-t3-nicuni", "top", 25.0).values["diameter"]
    assert abs(right - 10.0) < 0.003
    assert abs(wrong - 12.5) < 0.004


def test_measurements_carry_status_from_the_gate():
    r = render_silhouette("disc", {"diameter": 10.2}, um_per_px=UM, size_wh=(560, 560))
    ms = to_measurements(measure_view(r.image, "def-disc-d10-t3-nicuni", "top", UM), "def-disc-d10-t3-nicuni")
    assert ms["diameter"].status == MeasurementStatus.OUT_OF_TOLERANCE
    assert ms["diameter"].value_mm == pytest.approx(10.2, abs=0.003)


@pytest.mark.parametrize(
    "image",
    [
        np.full((300, 300), 200, np.uint8),  # blank back-light
        np.random.default_rng(0).normal(128, 10, (300, 300)).clip(0, 255).astype(np.uint8),  # noise
    ],
    ids=["blank", "noise"],
)
def test_part_not_found(image):
    with pytest.raises(PartNotFoundError, match="part not found"):
        measure_view(image, "def-disc-d10-t3-nicuni", "top", UM)


def test_part_cut_off_by_the_frame_is_not_measured():
    r = render_silhouette("disc", {"diameter": 10.0}, um_per_px=UM, size_wh=(400, 400), center_xy_px=(100, 200))
    with pytest.raises(PartNotFoundError, match="border"):
        measure_view(r.image, "def-disc-d10-t3-nicuni", "top", UM)


def test_ring_without_bore_is_not_a_ring():
    r = render_silhouette("disc", {"diameter": 20.0}, um_per_px=UM, size_wh=(960, 960))
    with pytest.raises(PartNotFoundError, match="bore"):
        measure_view(r.image, "com-ring-od20-id10-t5", "top", UM)


def test_bad_scale_rejected():
    with pytest.raises(ValueError, match="um_per_px"):
        measure_view(np.zeros((10, 10), np.uint8), "def-disc-d10-t3-nicuni", "top", 0.0)


def test_robust_line_and_circle_fits_ignore_outliers():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 100, 200)
    pts = np.column_stack([x, 0.5 * x + 3 + rng.normal(0, 0.02, x.size)])
    pts[50:70, 1] -= 6.0  # a chip
    line = fit_line(pts)
    assert abs(line.distance_px(np.array([[0.0, 3.0], [100.0, 53.0]]))).max() < 0.02
    a = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    pts = np.column_stack([50 + 30 * np.cos(a), 60 + 30 * np.sin(a)]) + rng.normal(0, 0.02, (400, 2))
    pts[:40] *= 0.9
    circ = fit_circle(pts)
    assert abs(circ.radius_px - 30) < 0.01 and np.abs(circ.center_xy_px - [50, 60]).max() < 0.01


def test_ideal_outline_and_result_geometry():
    r = render_silhouette("block", CASES["block"][1], um_per_px=UM, size_wh=(1000, 1000), angle_deg=2.0)
    res = measure_view(r.image, CASES["block"][0], "top", UM)
    assert len(res.edges) == 4 and [e.index for e in res.edges] == [1, 2, 3, 4]
    assert res.corners_xy_px.shape == (4, 2)
    ideal = res.ideal_mask()
    # the ideal mask and the rendered part agree to within a pixel around the outline
    assert abs(int(ideal.sum()) - int((r.class_mask == 1).sum())) < 0.002 * ideal.sum()


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["block", "disc", "ring", "arc"])
def test_top_view_repeatability_30_poses(shape):
    errs = _errors_px(shape, n=30, seed=3)
    for name, e in errs.items():
        if name.endswith("_deg") or name == "chamfer":
            continue
        assert abs(e.mean()) <= 0.1 and e.std(ddof=1) <= 0.05, (name, e.mean(), e.std(ddof=1))


def test_ideal_mask_and_distances_computed_in_the_roi_match_the_whole_image():
    """ROI rasterisation (what the inspection path uses) == the plain full-image definition."""
    import cv2

    from magspect.datasets import SynthConfig, generate_part

    p = generate_part(spec="com-ring-od20-id10-t5", seed=4, config=SynthConfig(backlight=True))
    rv = p.views["top"]
    res = measure_view(rv.backlight, "com-ring-od20-id10-t5", "top", rv.truth["um_per_px"])
    h, w = res.part_mask.shape
    canvas = np.zeros((h * 4, w * 4), np.uint8)
    polys = [np.round(((q + 0.5) * 4 - 0.5) * 16).astype(np.int32) for q in res.ideal_outline_xy_px]
    cv2.fillPoly(canvas, polys[:1], 1, shift=4)
    cv2.fillPoly(canvas, polys[1:], 0, shift=4)
    full = (cv2.resize(canvas.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5).astype(np.uint8)
    np.testing.assert_array_equal(res.ideal_mask(), full)
    np.testing.assert_allclose(
        res.inner_distance_px(), cv2.distanceTransform(full, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), atol=1e-5
    )
    x0, y0, x1, y1 = res.roi_xyxy_px()
    assert full[:y0].sum() == full[y1:].sum() == full[:, :x0].sum() == full[:, x1:].sum() == 0
    assert res.ideal_mask() is res.ideal_mask()  # computed once
