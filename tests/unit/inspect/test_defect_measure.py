"""Defect measurement from class masks against rendered truth."""

import cv2
import numpy as np
import pytest

from magspect.datasets.targets import Chip, render_silhouette
from magspect.inspect.defect_measure import measure_defects, skeleton_length_px, skeletonize
from magspect.inspect.metrology import measure_view

UM = 25.0
SPEC = "def-blk-20x10x5-nicuni"
DIMS = {"length": 20.0, "width": 10.0, "chamfer": 0.2}


@pytest.fixture(scope="module")
def chipped():
    chips = (Chip((3.0, 5.0), 0.4), Chip((-10.0, -5.0), 0.3))
    r = render_silhouette("block", DIMS, um_per_px=UM, size_wh=(1000, 1000), angle_deg=17.0, chips=chips)
    return r, measure_view(r.image, SPEC, "top", UM)


def test_chips_measured_against_the_ideal_outline(chipped):
    r, res = chipped
    defects = sorted(measure_defects(r.class_mask, res, SPEC), key=lambda d: d.zone)
    assert [d.class_name for d in defects] == ["chip", "chip"]
    corner, edge = defects
    assert corner.zone == "corner" and corner.subtype == "corner_chip" and corner.edge_index == 4
    assert edge.zone == "edge" and edge.subtype == "edge_chip" and edge.edge_index == 3
    for d, depth in ((edge, r.chip_depth_mm[0]), (corner, r.chip_depth_mm[1])):
        assert d.depth_mm == pytest.approx(depth, abs=0.025)  # one pixel
    # edge chip: a circle of r 0.4 mm cut 0.394 mm deep spans 2 * sqrt(0.4^2 - 0.006^2) along the edge
    assert edge.length_mm == pytest.approx(0.8, abs=0.05)
    assert edge.area_mm2 == pytest.approx(np.pi * 0.4**2 / 2, rel=0.1)


def test_crack_length_along_skeleton_and_face_zone(chipped):
    r, res = chipped
    cm = r.class_mask.copy()
    cm[(cm == 3)] = 1
    pts = np.array([[420, 480], [480, 500], [560, 490], [620, 530]], np.int32)
    cv2.polylines(cm, [pts], False, 2, thickness=3)
    true_len = sum(np.hypot(*(pts[i + 1] - pts[i])) for i in range(3)) * UM / 1000
    (d,) = measure_defects(cm, res, SPEC)
    assert d.class_name == "crack" and d.zone == "pole_face" and d.subtype == "face_crack" and d.edge_index is None
    assert d.length_mm == pytest.approx(true_len, rel=0.05)
    assert 3 * UM / 1000 <= d.width_mm <= 6 * UM / 1000  # OpenCV's thickness-3 stroke is 3-5 px wide


def test_a_crack_in_pieces_is_one_crack_when_joined(chipped):
    """A crack the model lost for a few pixels where it shows faintly: not joined (the default), two
    cracks; with ``crack_join_px`` one, as long as its pieces together (the gap not counted). Pieces
    farther apart stay two cracks."""
    r, res = chipped
    cm = r.class_mask.copy()
    cm[(cm == 3)] = 1
    cv2.line(cm, (400, 500), (500, 500), 2, thickness=2)
    cv2.line(cm, (505, 500), (600, 500), 2, thickness=2)  # a 4 px gap
    cv2.line(cm, (630, 500), (700, 500), 2, thickness=2)  # 29 px on
    apart = [d for d in measure_defects(cm, res, SPEC) if d.class_name == "crack"]
    joined = [d for d in measure_defects(cm, res, SPEC, crack_join_px=4) if d.class_name == "crack"]
    assert len(apart) == 3 and len(joined) == 2
    whole = max(joined, key=lambda d: d.length_mm)
    two = sorted(apart, key=lambda d: d.bbox_xyxy_px[0])[:2]
    assert whole.length_mm == pytest.approx(sum(d.length_mm for d in two), abs=2 * UM / 1000)
    assert whole.bbox_xyxy_px[0] == two[0].bbox_xyxy_px[0] and whole.bbox_xyxy_px[2] == two[1].bbox_xyxy_px[2]
    assert whole.area_mm2 == pytest.approx(sum(d.area_mm2 for d in two))


def test_coating_flaw_zone_and_confidence(chipped):
    r, res = chipped
    cm = r.class_mask.copy()
    cm[cm == 3] = 1
    cv2.circle(cm, (500, 500), 6, 4, -1)  # a pit in the middle of the pole face
    probs = np.zeros(cm.shape + (5,), np.float32)
    probs[..., 4] = 0.7
    (d,) = measure_defects(cm, res, SPEC, probs=probs)
    assert d.class_name == "coating_flaw" and d.zone == "pole_face"
    assert d.confidence == pytest.approx(0.7)
    assert d.length_mm == pytest.approx(13 * UM / 1000, abs=0.03)


def test_shape_mismatch_rejected(chipped):
    _, res = chipped
    with pytest.raises(ValueError, match="shape"):
        measure_defects(np.zeros((10, 10), np.uint8), res, SPEC)


def test_skeleton_of_a_straight_bar():
    m = np.zeros((20, 120), bool)
    m[8:13, 10:110] = True
    sk = skeletonize(m)
    assert sk.sum() < m.sum() / 3
    assert skeleton_length_px(sk) == pytest.approx(95, abs=6)


def test_chips_against_generator_truth():
    gen = pytest.importorskip("magspect.datasets")
    if not hasattr(gen, "generate_part"):
        pytest.skip("generator not available")
    cfg = gen.SynthConfig(lighting="backlight", force_defect="chip", nuisances=False, exposure_jitter=0.0,
                          views=("top",), max_defects=1)
    for seed in range(2):
        rv = gen.generate_part(spec=SPEC, seed=seed, config=cfg).views["top"]
        res = measure_view(rv.image, SPEC, "top", rv.truth["um_per_px"])
        got = [d for d in measure_defects(rv.class_mask, res, SPEC) if d.class_name == "chip"]
        truth = [d for d in rv.truth["defects"] if d["class_name"] == "chip"]
        assert len(got) == len(truth) == 1
        g, t = got[0], truth[0]
        assert (g.zone, g.edge_index) == (t["zone"], t["edge_index"])
        assert g.length_mm == pytest.approx(t["length_mm"], abs=0.06)
        assert g.depth_mm == pytest.approx(t["depth_mm"], abs=0.06)


def test_a_chip_called_inside_a_face_is_a_surface_flaw(chipped):
    """Chips happen at edges: a chip-class blob clear of every edge is reported as a coating flaw
    (subtype unknown, judged as the strictest), with the chip class's confidence."""
    r, res = chipped
    cm = r.class_mask.copy()
    cm[cm == 3] = 1
    cv2.circle(cm, (500, 500), 6, 3, -1)
    probs = np.zeros(cm.shape + (5,), np.float32)
    probs[..., 3] = 0.8
    (d,) = measure_defects(cm, res, SPEC, probs=probs)
    assert d.class_name == "coating_flaw" and d.zone == "pole_face" and d.subtype is None and d.depth_mm is None
    assert d.confidence == pytest.approx(0.8)
    assert d.length_mm == pytest.approx(13 * UM / 1000, abs=0.03)


def test_blobs_under_the_detection_limit_are_left_out(chipped):
    """A defect must span about 3 px to be detected reliably: a 2x2 speck (dust) is not a crack;
    a 4-px line is."""
    r, res = chipped
    cm = r.class_mask.copy()
    cm[cm == 3] = 1
    cm[500:502, 500:502] = 2  # a 2x2 speck
    cm[450, 400:404] = 2  # a line 4 px long
    found = measure_defects(cm, res, SPEC)
    assert [(d.class_name, round(d.length_mm / (UM / 1000))) for d in found] == [("crack", 4)]
    assert len(measure_defects(cm, res, SPEC, min_span_px=1.0)) == 2


def test_a_chip_split_by_a_gap_is_one_chip(chipped):
    """The segmentation can leave a thin gap across one broken edge: joined (the default), the pieces
    are one chip as long as the whole (the gap's pixels are not counted); not joined, two shorter ones."""
    r, res = chipped
    cm = r.class_mask.copy()
    (edge,) = [d for d in measure_defects(cm, res, SPEC) if d.zone == "edge"]
    x0, y0, x1, y1 = (int(v) for v in edge.bbox_xyxy_px)
    ys, xs = np.nonzero(cm[y0:y1, x0:x1] == 3)
    ys, xs = ys + y0, xs + x0
    pts = np.column_stack([xs, ys]).astype(float)
    axis = np.linalg.svd(pts - pts.mean(0))[2][0]  # the chip's long direction (along the edge)
    cut = np.abs((pts - pts.mean(0)) @ axis) < 0.8  # a band about 1.5 px wide across its middle
    cm[ys[cut], xs[cut]] = 1

    def edge_chips(**kw):
        return [d for d in measure_defects(cm, res, SPEC, **kw) if d.class_name == "chip" and d.zone == "edge"]

    split, joined = edge_chips(chip_join_px=0), edge_chips()  # joined by default (CHIP_JOIN_PX)
    assert len(split) == 2 and all(d.length_mm < 0.6 * edge.length_mm for d in split)
    assert len(joined) == 1
    assert joined[0].length_mm == pytest.approx(edge.length_mm, abs=0.03)
    assert joined[0].area_mm2 == pytest.approx(sum(d.area_mm2 for d in split))
    assert joined[0].area_mm2 < edge.area_mm2  # the gap is not filled
