"""The model's own length-sizing uncertainty: measured on parts with known truth
(``calibrate-sizing``), carried in its manifest, used by the gate as the decision band around
length limits, with the model's verifier relinked to the rewritten file."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.cli.sizing import write_calibrated
from magspect.datasets import SynthConfig, generate_part
from magspect.edge._sim import image_digest
from magspect.inspect.backend import Segmentation, Segmenter
from magspect.inspect.evaluate import MIN_SIZING_N, size_uncertainty_px
from magspect.inspect.inspector import Inspector
from magspect.inspect.verifier import Verifier
from magspect.models.manifest import Manifest, Preprocess
from magspect.specs import get_spec
from magspect.types import Verdict

SPEC = "def-blk-20x10x5-nicuni"
runner = CliRunner()


def test_uncertainty_is_bias_plus_two_robust_sigmas_and_needs_enough_defects():
    errors = [-2.0] * 10 + [-1.0] * 10 + [0.0] * 10  # median -1, MAD 1
    assert size_uncertainty_px(errors) == pytest.approx(4.0)  # 1 + 2 * 1.4826 = 3.97, rounded up to 0.1
    assert size_uncertainty_px(errors + [-60.0, -80.0]) == pytest.approx(4.0)  # two defects found in pieces
    assert size_uncertainty_px([0.5] * (MIN_SIZING_N - 1)) is None
    assert size_uncertainty_px([0.5] * MIN_SIZING_N) == pytest.approx(0.5)


class _Truth:
    """The generator's truth masks as the model, with a sizing uncertainty in its manifest."""

    def __init__(self, part, uncertainty_px):
        self.manifest = Manifest(model_name="truth", in_channels=1, defect_length_uncertainty_px=uncertainty_px,
                                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        self.name, self.sha256, self.provider = "truth", "0" * 64, "truth"
        self.masks = {image_digest(rv.image): rv.class_mask for rv in part.views.values()}

    def predict(self, images, batch_size=8, rois=None):
        return [Segmentation(m, np.ones(m.shape, np.float32)) for m in (self.masks[image_digest(i)] for i in images)]


def test_the_decision_band_is_the_larger_of_the_models_and_the_specs():
    part = generate_part(SPEC, 1, SynthConfig(size_px=512, force_defect="chip", out_of_tolerance_rate=0.0,
                                              backlight=True))
    scale = {v: rv.truth["um_per_px"] for v, rv in part.views.items()}
    views = {v: rv.image for v, rv in part.views.items()}
    backs = {v: rv.backlight for v, rv in part.views.items()}
    spec = get_spec(SPEC)
    assert spec.decision.defect_uncertainty_px == 1.0
    wide = Inspector(segmenter=_Truth(part, {"chip": 6.0}), verifier=False)
    narrow = Inspector(segmenter=_Truth(part, {"chip": 0.25}), verifier=False)
    assert wide.length_uncertainty_px(spec, "chip") == 6.0 and wide.length_uncertainty_px(spec, "crack") == 1.0
    assert narrow.length_uncertainty_px(spec, "chip") == 1.0  # never under what the spec's optics resolve
    r_wide, r_narrow = (i.inspect(views, spec=SPEC, um_per_px=scale, backlights=backs) for i in (wide, narrow))
    chips = [d for d in r_wide.defects if d.class_name == "chip"]
    assert chips, "the forced chip is reported"
    for d in chips:  # the model's band on the length; width and depth keep the spec's
        assert d.length_uncertainty_mm == pytest.approx(6.0 * scale[d.view] / 1000)
        assert d.uncertainty_mm == pytest.approx(1.0 * scale[d.view] / 1000)
    for d in (d for d in r_narrow.defects if d.class_name == "chip"):
        assert d.length_uncertainty_mm is None and d.uncertainty_mm == pytest.approx(1.0 * scale[d.view] / 1000)
    # a wider band can only move verdicts towards REVIEW, never to PASS
    assert r_narrow.verdict != Verdict.PASS and r_wide.verdict != Verdict.PASS


def test_write_calibrated_carries_the_band_and_relinks_the_verifier(tmp_path, const_model, build_verifier):
    sha = Segmenter(const_model, warmup=False).sha256
    verifier = build_verifier(tmp_path / "v-in.onnx", segmenter_sha=sha)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "SHA256SUMS").write_text(f"{'0' * 64}  model.onnx\n{'0' * 64}  verifier.onnx\n{'1' * 64}  other.onnx\n")
    sizing = {
        "chip": {"n": 40, "length_median_px": -1.5, "length_sigma_robust_px": 3.0, "length_uncertainty_px": 7.5},
        "crack": {"n": 5, "length_median_px": -30.0, "length_sigma_robust_px": 20.0, "length_uncertainty_px": None},
    }
    new_sha = write_calibrated(const_model, weights / "model.onnx", sizing, verifier, weights / "verifier.onnx")

    man = Manifest.from_onnx(weights / "model.onnx")
    assert man.defect_length_uncertainty_px == {"chip": 7.5}  # too few cracks: the spec's band stays
    assert man.validation_metrics["sizing/crack/n"] == 5.0
    assert Manifest.from_file(weights / "model.manifest.json") == man
    assert new_sha != sha and f"{new_sha}  model.onnx" in (weights / "SHA256SUMS").read_text()
    assert f"{'1' * 64}  other.onnx" in (weights / "SHA256SUMS").read_text()
    # the checksums beside the files are right (the runtime checks them) and the verifier follows
    insp = Inspector(weights / "model.onnx", verifier=weights / "verifier.onnx")
    assert insp.verifier is not None and insp.verifier.manifest.fits(new_sha)
    assert not Verifier(verifier).manifest.fits(new_sha)
    assert insp.length_uncertainty_px(get_spec(SPEC), "chip") == 7.5
    other = build_verifier(tmp_path / "other.onnx", segmenter_sha="f" * 64)
    with pytest.raises(ValueError, match="not trained for"):  # another model's verifier is not relinked
        write_calibrated(const_model, tmp_path / "m2.onnx", sizing, other, tmp_path / "v2.onnx")
    assert not (tmp_path / "m2.onnx").exists()


def test_bad_requests_are_clear_errors(tmp_path, const_model, build_verifier):
    out = tmp_path / "out.onnx"
    r = runner.invoke(app, ["calibrate-sizing", str(const_model), "--out", str(out), "--verifier", "v.onnx"])
    assert r.exit_code == 2 and "--verifier-out" in r.output
    r = runner.invoke(app, ["calibrate-sizing", str(const_model), "--out", str(const_model)])
    assert r.exit_code == 2 and "new paths" in r.output
    r = runner.invoke(app, ["calibrate-sizing", str(const_model), "--out", str(out), "--split", "test"])
    assert r.exit_code == 2 and "val split" in r.output
    other = build_verifier(tmp_path / "other.onnx", segmenter_sha="f" * 64)
    r = runner.invoke(app, ["calibrate-sizing", str(const_model), "--out", str(out), "--verifier", str(other),
                            "--verifier-out", str(tmp_path / "v2.onnx")])
    assert r.exit_code == 2 and "not trained for" in r.output
    assert not out.exists()


def test_too_few_found_defects_to_size_writes_nothing(tmp_path, const_model):
    """A blind model finds only the silhouette's chips on 20 parts: too few to state a band."""
    out = tmp_path / "out.onnx"
    r = runner.invoke(app, ["calibrate-sizing", str(const_model), "--out", str(out), "--n", "20", "--no-progress"])
    assert r.exit_code == 2, r.output
    assert "chip" in r.output and f"under {MIN_SIZING_N} found" in r.output
    assert "no class had" in r.output and not out.exists()
