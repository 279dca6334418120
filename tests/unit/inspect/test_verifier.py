"""The look-alike verifier at run time (no torch): its input patches, loading, and what the
Inspector does with its scores (drop look-alikes, keep real defects, fail closed on errors)."""

import numpy as np
import pytest

from magspect.datasets import SynthConfig, generate_part
from magspect.edge._sim import image_digest
from magspect.inspect.backend import Segmentation
from magspect.inspect.inspector import Inspector
from magspect.inspect.verifier import (
    PATCH_PX,
    Verifier,
    VerifierError,
    candidate_features,
    candidate_patches,
)
from magspect.models.manifest import Manifest, Preprocess
from magspect.types import Defect, Verdict

SPEC = "def-blk-20x10x5-nicuni"
ORACLE_SHA = "0" * 64


class Oracle:
    """The generator's truth masks with a chosen confidence: the model, without a model."""

    def __init__(self, confidence):
        self.manifest = Manifest(model_name="oracle", in_channels=1,
                                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        self.name, self.sha256, self.provider = "oracle", ORACLE_SHA, "truth"
        self.masks, self.confidence = [], confidence

    def predict(self, images, batch_size=8, rois=None):  # each image's own mask: views come one by one
        ms = [self.masks[image_digest(im)] for im in images]
        return [Segmentation(m, np.full(m.shape, self.confidence, np.float32)) for m in ms]


def _inspect(confidence, verifier, seed=3, detailed=False, **kw):
    cfg = SynthConfig(size_px=512, force_defect="crack", out_of_tolerance_rate=0.0)
    part = generate_part(SPEC, seed, cfg)
    back = generate_part(SPEC, seed, cfg.with_(lighting="backlight"))
    oracle = Oracle(confidence)
    oracle.masks = {image_digest(rv.image): rv.class_mask for rv in part.views.values()}
    insp = Inspector(segmenter=oracle, verifier=verifier, **kw)
    return (insp.inspect_detailed if detailed else insp.inspect)(
        {v: rv.image for v, rv in part.views.items()}, spec=SPEC,
        um_per_px={v: rv.truth["um_per_px"] for v, rv in part.views.items()},
        backlights={v: rv.image for v, rv in back.views.items()},
    )


def test_patches_show_the_candidate_and_its_context():
    img = np.full((200, 300), 128, np.uint8)
    img[100, 40:160] = 26  # a long dark line
    mask = np.ones(img.shape, np.uint8)  # good surface
    mask[100, 40:160] = 2  # the model called it a crack
    boxes = [(40, 100, 160, 101), (0, 0, 5, 5)]  # the line; a box in the image corner
    p = candidate_patches(img, mask, boxes)
    assert p.shape == (2, 4, PATCH_PX, PATCH_PX) and p.dtype == np.float32
    assert abs(p[0, 0].mean()) < 1e-6 and abs(p[0, 2].mean()) < 1e-6  # image channels: patch mean removed
    # native window: the line runs through it edge to edge; context window: all of it, shrunk
    assert p[0, 1].sum() == PATCH_PX
    ctx_cols = np.nonzero(p[0, 3].sum(axis=0))[0]
    assert 0 < ctx_cols[0] and ctx_cols[-1] < PATCH_PX - 1, "the context window holds the whole line"
    assert p[0, 0].min() < -0.3  # dark line, bright surround
    assert np.isfinite(p[1]).all() and p[1, 1].sum() == 0  # off the image: edge pixels repeated, no defect
    # 16-bit images scale by their own divisor; a colour image is read as gray
    p16 = candidate_patches(img.astype(np.uint16) * 257, mask, boxes)
    np.testing.assert_allclose(p16, p, atol=1e-6)
    p_bgr = candidate_patches(np.dstack([img] * 3), mask, boxes)
    np.testing.assert_allclose(p_bgr, p, atol=1e-6)
    with pytest.raises(ValueError, match="float64"):
        candidate_patches(img.astype(np.float64), mask, boxes)


def test_six_channel_patches_add_where_the_part_is():
    """Channels 4 and 5: the part (what the model did not call background) in the native and the context
    window; the first four channels are the 4-channel layout's, so either network reads its own."""
    img = np.full((200, 300), 128, np.uint8)
    img[100, 40:260] = 26  # a line that runs on past the part's edge (x = 150): lint lying over it
    mask = np.zeros(img.shape, np.uint8)  # background
    mask[:, :150] = 1  # the part: good surface
    mask[100, 120:150] = 2  # the model called the part of the line on the part a crack
    boxes = [(120, 100, 150, 101), (290, 190, 300, 200)]  # the call; a box at the image's corner
    p6 = candidate_patches(img, mask, boxes, channels=6)
    assert p6.shape == (2, 6, PATCH_PX, PATCH_PX)
    np.testing.assert_array_equal(p6[:, :4], candidate_patches(img, mask, boxes))
    # native window x 103..166: the part ends at column 150 - 103 = 47
    assert (p6[0, 4, :, :47] == 1).all() and (p6[0, 4, :, 47:] == 0).all()
    ctx = p6[0, 5]  # the context window (64 px, centred the same): the part's edge inside it too
    assert ctx[:, 0].min() == 1 and ctx[:, -1].max() == 0 and set(np.unique(ctx)) <= {0.0, 1.0}
    assert (p6[1, 4:] == 0).all()  # off the part, and off the image (not edge-repeated)
    with pytest.raises(ValueError, match="4 or 6 channels, not 5"):
        candidate_patches(img, mask, boxes, channels=5)


def test_features_are_class_and_confidence():
    d = Defect(class_name="chip", zone="edge", length_mm=1, width_mm=0.2, area_mm2=0.1, confidence=0.7)
    f = candidate_features([d])
    assert f.tolist() == [[0.0, 1.0, 0.0, pytest.approx(0.7)]]


def test_inspector_drops_what_the_verifier_dismisses_and_records_it(tmp_path, build_verifier):
    path = build_verifier(tmp_path / "v.onnx")
    kept = _inspect(0.9, path)
    assert kept.verdict != Verdict.PASS and any(d.class_name == "crack" for d in kept.defects)
    assert kept.dismissed == () and kept.verifier is not None and kept.verifier.name == "conf"
    dropped = _inspect(0.4, path)  # the same crack, scored under the threshold: a look-alike
    assert not any(d.class_name == "crack" for d in dropped.defects)
    assert any(d.class_name == "crack" for d in dropped.dismissed)
    assert all(d.dismissed_because.startswith("look-alike verifier score ") and d.dismissed_because.endswith(" < 0.500")
               for d in dropped.dismissed)  # why: its score under the threshold
    assert "verify" in dropped.timings_ms
    art = _inspect(0.4, path, detailed=True)
    for v, a in art.views.items():  # the view's mask shows what was judged: no dismissed crack left
        assert not (a.segmentation.class_mask == 2).any(), v
        assert a.dismissed == [d for d in art.result.dismissed if d.view == v]
    without = _inspect(0.4, False)
    assert any(d.class_name == "crack" for d in without.defects) and without.verifier is None


def test_a_verifier_for_another_model_is_refused_or_not_used(tmp_path, build_verifier):
    other = build_verifier(tmp_path / "other.onnx", segmenter_sha="f" * 64)
    with pytest.raises(VerifierError, match="retrain it for this model"):
        Inspector(segmenter=Oracle(0.9), verifier=other)
    assert Inspector(segmenter=Oracle(0.9)).verifier is None  # the bundled one is not for the oracle


def test_a_verifier_that_fails_fails_the_inspection_closed(tmp_path, build_verifier):
    broken = build_verifier(tmp_path / "broken.onnx", n_features=5)  # expects 5 features, gets 4
    r = _inspect(0.9, broken)
    assert r.verdict == Verdict.REJECT and r.error is not None and "internal error" in r.error


def test_the_inspector_gives_a_verifier_the_patch_layout_its_input_declares(tmp_path, build_verifier):
    """A 6-channel verifier gets 6-channel patches through the whole pipeline (onnxruntime would refuse
    4), a 4-channel one 4; a file declaring another layout is a clear error."""
    for channels in (4, 6):
        v = build_verifier(tmp_path / f"v{channels}.onnx", segmenter_sha=ORACLE_SHA, channels=channels)
        assert Verifier(v).channels == channels
        r = _inspect(0.9, v)
        assert r.error is None and r.verdict == Verdict.REJECT and r.verifier is not None
        assert any(d.class_name == "crack" and d.verifier_score is not None for d in r.defects)
    with pytest.raises(VerifierError, match="patches input .* expected N x 4 or 6 x P x P"):
        Verifier(build_verifier(tmp_path / "v5.onnx", channels=5))


def test_missing_or_foreign_files_are_clear_errors(tmp_path, const_model):
    with pytest.raises(VerifierError, match="does not exist"):
        Verifier(tmp_path / "nope.onnx")
    with pytest.raises(VerifierError, match="no embedded magspect manifest"):
        Verifier(const_model)



def test_a_review_band_sends_unsure_kept_defects_to_review_not_reject(tmp_path, build_verifier):
    path = build_verifier(tmp_path / "v.onnx")  # keeps at 0.5; the crack at confidence 0.9 scores 0.9975
    sure = _inspect(0.9, path)
    assert sure.verdict == Verdict.REJECT
    cracks = [d for d in sure.defects if d.class_name == "crack"]
    assert cracks and all(d.verifier_score == pytest.approx(0.9975, abs=1e-3) and d.review_reason is None
                          for d in cracks)
    unsure = _inspect(0.9, path, review_below=0.999)  # kept, but inside the band: a person decides
    assert unsure.verdict == Verdict.REVIEW
    assert all(d.review_reason and "look-alike verifier unsure" in d.review_reason
               for d in unsure.defects if d.class_name == "crack")
    assert any("look-alike verifier unsure" in r.message for r in unsure.reasons)
    insp = Inspector(segmenter=Oracle(0.9), verifier=path, review_below=0.999)
    assert insp.verifier_review_below == 0.999
    assert Inspector(segmenter=Oracle(0.9), verifier=path).verifier_review_below is None  # none in its manifest
    with pytest.raises(ValueError, match="review_below"):
        Inspector(segmenter=Oracle(0.9), verifier=path, review_below=1.5)


def test_a_spec_with_its_own_operating_point_is_judged_by_it(tmp_path, build_verifier):
    """The crack at confidence 0.9 scores 0.9975: kept at the verifier's 0.5, dismissed where the
    part's spec has its own cut of 0.999, sent to REVIEW where its spec has a band above it; a point
    for another spec changes nothing."""
    strict = build_verifier(tmp_path / "strict.onnx", spec_points={SPEC: {"keep_threshold": 0.999}})
    r = _inspect(0.9, strict)
    assert not any(d.class_name == "crack" for d in r.defects)
    assert any(d.class_name == "crack" for d in r.dismissed)
    band = build_verifier(tmp_path / "band.onnx",
                          spec_points={SPEC: {"keep_threshold": 0.5, "review_below": 0.999}})
    r = _inspect(0.9, band)
    assert r.verdict == Verdict.REVIEW
    assert all(d.review_reason for d in r.defects if d.class_name == "crack")
    other = build_verifier(tmp_path / "other.onnx", spec_points={"def-disc-d10-t3-nicuni": {"keep_threshold": 0.999}})
    r = _inspect(0.9, other)
    assert r.verdict == Verdict.REJECT and any(d.class_name == "crack" for d in r.defects)
    v = Verifier(band)
    assert v.operating_point(SPEC).review_below == 0.999 and v.operating_point("other").keep_threshold == 0.5
    assert v.review_band(None, SPEC) == 0.999 and v.review_band(None, "other") is None
    assert v.review_band(0.9999, SPEC) == 0.9999  # the caller's band wins


def test_dihedral_views_are_the_eight_flips_and_rotations_in_a_fixed_order():
    from magspect.inspect.verifier import dihedral_views

    x = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)  # no symmetry: all 8 differ
    v8 = dihedral_views(x, 8)
    assert v8.shape == (16, 1, 3, 3) and v8.flags.c_contiguous
    np.testing.assert_array_equal(v8[:2], x)
    np.testing.assert_array_equal(v8[2:4], x[..., ::-1])  # mirrored left-right
    np.testing.assert_array_equal(v8[8:10], x.swapaxes(-1, -2))  # transposed
    faces = {v8[i, 0].tobytes() for i in range(0, 16, 2)}
    assert len(faces) == 8  # every element of the dihedral group once
    assert {np.rot90(x[0, 0], k).tobytes() for k in range(4)} <= faces
    np.testing.assert_array_equal(dihedral_views(x, 2), v8[:4])
    np.testing.assert_array_equal(dihedral_views(x, 1), x)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        dihedral_views(x, 3)


def _chip_lit_and_unlit(verifier_path, review_below=None):
    """One part with a chip, its model unsure everywhere (the oracle's confidence 0; silhouette pixels
    count as sure, 1.0), inspected with a back-lit image of it and without: (lit, unlit) results."""
    cfg = SynthConfig(size_px=1024, force_defect="chip", out_of_tolerance_rate=0.0, nuisances=False, views=("top",),
                      lighting="coaxial")  # a front image metrology can also measure on its own
    part = generate_part(SPEC, 5, cfg)
    back = generate_part(SPEC, 5, cfg.with_(lighting="backlight"))
    oracle = Oracle(0.0)
    oracle.masks = {image_digest(rv.image): rv.class_mask for rv in part.views.values()}
    insp = Inspector(segmenter=oracle, verifier=verifier_path, review_below=review_below)
    kw = dict(spec=SPEC, um_per_px={v: rv.truth["um_per_px"] for v, rv in part.views.items()})
    images = {v: rv.image for v, rv in part.views.items()}
    lit = insp.inspect(images, backlights={v: rv.image for v, rv in back.views.items()}, **kw)
    return lit, insp.inspect(images, **kw)


def test_a_chip_the_back_lit_silhouette_shows_is_not_dismissed_as_a_look_alike(tmp_path, build_verifier):
    """Material missing from the back-lit silhouette is measured, not a look-alike: the verifier scores
    the chip (recorded) but cannot dismiss it. Without a back-light the same chip is dismissed."""
    # the chip's mean confidence stays well under the 0.83 that this verifier's threshold (0.99 on
    # sigmoid(20 c - 12)) asks for
    lit, unlit = _chip_lit_and_unlit(build_verifier(tmp_path / "v.onnx", threshold=0.99))
    chips = [d for d in lit.defects if d.class_name == "chip"]
    assert chips and all(d.verifier_score is not None and d.verifier_score < 0.99 for d in chips)
    assert all(d.dismissed_because is None for d in chips)
    assert not any(d.class_name == "chip" for d in lit.dismissed)
    assert lit.verdict != Verdict.PASS
    # no silhouette: nothing vouches for it
    assert not any(d.class_name == "chip" for d in unlit.defects)
    assert any(d.class_name == "chip" for d in unlit.dismissed)


def test_a_chip_the_back_lit_silhouette_shows_is_not_sent_to_review_by_the_verifier(tmp_path, build_verifier):
    """A silhouette chip the verifier keeps but is unsure of is judged as measured, as one it would have
    dismissed is: the verifier's review band does not soften it. Without a back-light it does."""
    path = build_verifier(tmp_path / "v.onnx", threshold=1e-6)  # keeps every candidate (sigmoid(-12) = 6e-6)
    lit, unlit = _chip_lit_and_unlit(path, review_below=0.9999)  # every kept score in the band
    chips = [d for d in lit.defects if d.class_name == "chip"]
    assert chips and all(d.verifier_score is not None and d.verifier_score < 0.9999 for d in chips)
    assert all(d.review_reason is None for d in chips)
    chips = [d for d in unlit.defects if d.class_name == "chip"]
    assert chips and all(d.review_reason and "verifier unsure" in d.review_reason for d in chips)
