"""Exactness: summed coverage equals the true area; edges sit where the truth says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from magspect.datasets import SynthConfig, generate_part
from magspect.datasets._geometry import Pose, coverage_field
from magspect.datasets._parts import view_geometry
from magspect.specs import get_spec

SPECS = ["def-blk-20x10x5-nicuni", "com-ring-od20-id10-t5", "def-disc-d10-t3-nicuni", "ev-arc-r30-r25-40deg"]


def _clean(**kw: object) -> SynthConfig:
    return SynthConfig.clean(lighting="backlight", bit_depth=16, size_px=384, **kw)


@pytest.mark.parametrize("spec_id", SPECS)
@pytest.mark.parametrize("angle", [0.0, 7.3, -2.1])
def test_coverage_and_image_area_match_true_area(spec_id: str, angle: float) -> None:
    part = generate_part(spec_id, 11, _clean(pose={"angle_deg": angle, "dx_px": 2.37, "dy_px": -1.61}))
    for view, rv in part.views.items():
        m = rv.truth["um_per_px"] / 1000
        area = view_geometry(rv.truth["shape"], rv.truth["dimensions_mm"], view).outline.area_mm2
        cov_area = float(rv.coverage.sum(dtype=np.float64)) * m * m
        assert cov_area == pytest.approx(area, rel=5e-4), (view, cov_area, area)
        img = rv.image.astype(np.float64)
        bg, fg = img.max(), img.min()
        dark_area = float(((bg - img) / (bg - fg)).sum()) * m * m
        assert dark_area == pytest.approx(area, rel=5e-4), (view, dark_area, area)


def test_area_is_not_trivially_true() -> None:
    """The check above can fail: a 0.3 px bigger block changes the area by far more than 0.05 %."""
    spec = get_spec("def-blk-20x10x5-nicuni")
    part = generate_part(spec, 3, _clean(views=("top",)))
    rv = part.views["top"]
    m = rv.truth["um_per_px"] / 1000
    dims = dict(rv.truth["dimensions_mm"], length=rv.truth["dimensions_mm"]["length"] + 0.3 * m)
    wrong = view_geometry("block", dims, "top").outline.area_mm2
    assert abs(float(rv.coverage.sum()) * m * m / wrong - 1) > 5e-4


@pytest.mark.parametrize("dx", [0.0, 0.37, 0.5, 0.83])
@pytest.mark.parametrize("blur", [False, True])
def test_edge_position_subpixel(dx: float, blur: bool) -> None:
    """Left edge of the block along its centre row: the 50 % point of the box-filtered step (row sum of
    normalised darkness across the edge) lies within 0.02 px of the true edge, with and without blur."""
    cfg = _clean(views=("top",), pose={"angle_deg": 0.0, "dx_px": dx, "dy_px": 0.5}, blur=blur,
                 blur_sigma_px=(0.9, 0.9))
    rv = generate_part("def-blk-20x10x5-nicuni", 5, cfg).views["top"]
    m = rv.truth["um_per_px"] / 1000
    pose = rv.truth["pose"]
    row = int(round(pose["cy_px"]))
    x_true = pose["cx_px"] - rv.truth["dimensions_mm"]["length"] / 2 / m
    img = rv.image.astype(np.float64)
    bg, fg = img[row, 2], img[row, int(pose["cx_px"])]
    a = (bg - img[row]) / (bg - fg)
    j0, j1 = int(x_true) - 6, int(x_true) + 6
    x_edge = j1 + 0.5 - a[j0:j1 + 1].sum()
    assert abs(x_edge - x_true) < 0.02
    if not blur:  # the one partial pixel says the same
        j = int(math.floor(x_true + 0.5))
        assert abs((j + 0.5 - a[j]) - x_true) < 0.02


def test_rotated_edge_coverage_is_exact_per_pixel() -> None:
    """A half-plane at 30 degrees: per-pixel coverage equals the analytic box-filter integral."""
    spec = get_spec("def-blk-20x10x5-nicuni")
    geom = view_geometry("block", spec.nominal_mm(), "side")
    pose = Pose(40.3, 40.1, 30.0, 0.1)
    cov, _ = coverage_field(geom.outline, pose, (80, 80))
    # brute force: 64x64 supersampling of pixel (i, j) near the long lower edge
    ss = 64
    off = (np.arange(ss) + 0.5) / ss - 0.5
    ii, jj = np.nonzero((cov > 0.02) & (cov < 0.98))
    assert ii.size > 20
    for i, j in list(zip(ii, jj, strict=True))[::7][:8]:
        xx, yy = np.meshgrid(j + off, i + off)
        uv = pose.to_mm(np.stack([xx, yy], -1))
        inside = geom.outline.contains(uv)
        assert cov[i, j] == pytest.approx(inside.mean(), abs=2e-3)
