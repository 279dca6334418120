"""Training the look-alike verifier: mined labels against the truth, the operating point, a short
training run that learns a separable toy problem, and an export that onnxruntime runs the same."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from magspect.datasets import SynthConfig, generate_part  # noqa: E402
from magspect.edge._sim import image_digest  # noqa: E402
from magspect.inspect.backend import Segmentation  # noqa: E402
from magspect.inspect.inspector import Inspector  # noqa: E402
from magspect.inspect.verifier import PATCH_PX, Verifier  # noqa: E402
from magspect.models.manifest import Manifest, Preprocess  # noqa: E402
from magspect.training.verifier import (  # noqa: E402
    VerifierTrainConfig,
    build_manifest,
    candidate_report,
    choose_threshold,
    export_verifier,
    net_from_onnx,
    split_by_seed,
    train_verifier,
    widen_input,
)
from magspect.training.verifier_data import load_mined, mine_part  # noqa: E402
from magspect.types import CLASS_IDS  # noqa: E402


class _Oracle:
    def __init__(self):
        self.manifest = Manifest(model_name="oracle", in_channels=1,
                                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        self.name, self.sha256, self.provider = "oracle", "0" * 64, "truth"
        self.masks = []

    def predict(self, images, batch_size=8, rois=None):  # each image's own mask: views come one by one
        return [Segmentation(m, np.ones(m.shape, np.float32)) for m in (self.masks[image_digest(im)] for im in images)]


def test_mined_candidates_are_labelled_against_the_truth():
    cfg = SynthConfig(size_px=512, force_defect="crack", out_of_tolerance_rate=0.0, backlight=True,
                      lighting=("coaxial",))
    part = generate_part("def-blk-20x10x5-nicuni", 3, cfg)
    oracle = _Oracle()
    masks = {}
    false_at = None
    for rv in part.views.values():
        m = rv.class_mask.copy()
        if false_at is None:  # a false coating flaw on the clean face, far from the crack
            ys, xs = np.nonzero(m == CLASS_IDS["good_surface"])
            for y, x in zip(ys[:: max(1, len(ys) // 400)], xs[:: max(1, len(xs) // 400)], strict=True):
                win = rv.class_mask[y - 12 : y + 13, x - 12 : x + 13]
                if win.shape == (25, 25) and (win == CLASS_IDS["good_surface"]).all():
                    m[y - 3 : y + 4, x - 3 : x + 4] = CLASS_IDS["coating_flaw"]
                    false_at = (rv, x, y)
                    break
        masks[image_digest(rv.image)] = m
    assert false_at is not None
    oracle.masks = masks
    got = mine_part(Inspector(segmenter=oracle, verifier=False), part)
    labels, causes = np.array(got["label"]), got["cause"]
    assert labels.sum() >= 1 and (~labels).sum() >= 1
    assert all(c == "" for c, lab in zip(causes, labels, strict=True) if lab)
    assert any(c in ("surface", "dust", "lint", "water_spot", "fingerprint", "glint") for c in causes)
    assert any(got["rejectable"]), "the forced crack is at/above the reject limit"
    # a real candidate names the truth defect it lies on (what the subtype classifier learns from)
    assert {c for c, lab in zip(got["truth_class"], labels, strict=True) if lab} == {"crack"}
    assert all(s in ("edge_crack", "corner_crack", "face_crack")
               for s, lab in zip(got["truth_subtype"], labels, strict=True) if lab)
    assert all(c == "" for c, lab in zip(got["truth_class"], labels, strict=True) if not lab)
    assert np.stack(got["patches"]).shape[1:] == (4, PATCH_PX, PATCH_PX)


def test_threshold_keeps_the_required_share_of_real_candidates():
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    label = np.array([0, 0, 0, 1, 1, 1, 1, 1, 1, 1], bool)
    rej = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], bool)
    t = choose_threshold(scores, label, rej, min_recall_rejectable=1.0, min_recall=0.8)
    assert t == pytest.approx(0.5)  # 6 of 7 real kept (>= 0.8), every rejectable one kept
    t = choose_threshold(scores, label, rej, min_recall_rejectable=1.0, min_recall=1.0)
    assert t == pytest.approx(0.4)


def test_candidate_report_counts_what_a_threshold_keeps_and_dismisses():
    prob = np.array([0.9, 0.6, 0.2, 0.7, 0.1, 0.4, 0.05, 0.8])
    label = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    rej = np.array([1, 0, 1, 0, 0, 0, 0, 0], bool)
    cause = np.array(["", "", "", "lint", "lint", "dust", "lint", "dust"])
    rep = candidate_report(prob, label, rej, cause, 0.5)
    assert (rep.val_real, rep.val_real_rejectable, rep.val_false, rep.n_val) == (3, 2, 5, 8)
    assert rep.kept_real == pytest.approx(2 / 3) and rep.kept_real_rejectable == pytest.approx(0.5)
    assert rep.dismissed_false == pytest.approx(3 / 5)
    assert rep.dismissed_false_by_cause == {"dust": (1, 2), "lint": (2, 3)}
    assert np.isnan(rep.val_auroc) and rep.keep_threshold == 0.5


def _toy_data(n_parts=60, per_part=4, seed=0):
    """Real defects: a dark line through the patch; look-alikes: a soft bright blob."""
    rng = np.random.default_rng(seed)
    n = n_parts * per_part
    label = rng.random(n) < 0.4
    p = rng.normal(0, 0.02, (n, 4, PATCH_PX, PATCH_PX)).astype(np.float32)
    yy, xx = np.mgrid[:PATCH_PX, :PATCH_PX]
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 30.0).astype(np.float32)
    for i in range(n):
        if label[i]:
            p[i, 0, 30:33, :] -= 0.3
            p[i, 1, 30:33, :] = 1
        else:
            p[i, 0] += 0.3 * blob
            p[i, 1] = blob > 0.5
    f = np.zeros((n, 4), np.float32)
    f[:, 0], f[:, 3] = 1, rng.uniform(0.5, 1.0, n)
    return {"patches": p.astype(np.float16), "features": f, "label": label, "rejectable": label.copy(),
            "cause": np.where(label, "", "dust"), "seed": np.repeat(np.arange(n_parts), per_part)}


def test_training_learns_a_separable_problem_and_exports_what_it_learned(tmp_path):
    data = _toy_data()
    net, rep = train_verifier(data, VerifierTrainConfig(epochs=3, batch_size=16, val_parts=20, threads=1),
                              log=lambda s: None)
    assert rep.val_auroc > 0.95
    assert rep.kept_real_rejectable >= 0.995 and rep.dismissed_false > 0.8
    assert rep.dismissed_false_by_cause["dust"][1] == rep.val_false
    _, va = split_by_seed(data, 20)
    man = build_manifest(rep, "a" * 64, {"toy": True})
    path = export_verifier(net, tmp_path / "v.onnx", man, check=(data["patches"][va], data["features"][va]))
    v = Verifier(path)
    assert v.manifest.segmenter_sha256 == "a" * 64 and v.manifest.keep_threshold == pytest.approx(rep.keep_threshold)
    s = v.scores(data["patches"][va].astype(np.float32), data["features"][va])
    keep = s >= v.manifest.keep_threshold
    assert keep[data["label"][va]].all() and (~keep[~data["label"][va]]).mean() > 0.8


def test_too_few_parts_to_hold_out_is_a_clear_error():
    with pytest.raises(ValueError, match="too few"):
        split_by_seed(_toy_data(n_parts=5), 10)


def test_held_out_seeds_can_be_named_when_candidates_come_from_several_seed_ranges():
    # a run's own parts 0..59 and another run's parts 1000..1099: by default the last 20 seeds
    # overall would be the other run's; named, the held-out parts are the run's own 40..59
    seed = np.concatenate([np.repeat(np.arange(60), 2), np.arange(1000, 1100)])
    tr, va = split_by_seed({"seed": seed}, 20, (40, 60))
    assert set(seed[va]) == set(range(40, 60)) and len(va) == 40
    assert not set(seed[tr]) & set(range(40, 60)) and len(tr) == len(seed) - 40
    assert set(seed[split_by_seed({"seed": seed}, 20)[1]]) == set(range(1080, 1100))
    with pytest.raises(ValueError, match="no candidates on the held-out parts"):
        split_by_seed({"seed": seed}, 20, (60, 80))
    with pytest.raises(ValueError, match="none to train on"):
        split_by_seed({"seed": seed}, 20, (0, 2000))


def test_a_verifier_loaded_from_its_onnx_export_computes_what_the_file_does_and_fine_tunes(tmp_path):
    data = _toy_data(seed=1)
    cfg = VerifierTrainConfig(epochs=1, batch_size=16, val_parts=20, threads=1)
    net, rep = train_verifier(data, cfg, log=lambda s: None)
    _, va = split_by_seed(data, 20)
    p, f = data["patches"][va].astype(np.float32), data["features"][va]
    path = export_verifier(net, tmp_path / "v.onnx", build_manifest(rep, "a" * 64, {}), check=(p, f))
    loaded = net_from_onnx(path)
    assert (loaded.widths, loaded.strides, loaded.n_out) == (net.widths, net.strides, 1)
    with torch.no_grad():
        got = loaded(torch.from_numpy(p), torch.from_numpy(f)).numpy().reshape(-1)
    from magspect.inspect.verifier import Verifier

    ort_logit = np.log(Verifier(path).scores(p, f)) - np.log1p(-Verifier(path).scores(p, f))
    assert np.abs(got - ort_logit).max() < 1e-3
    # fine-tuning: the folded statistics stay as loaded, the weights move, and it learns on
    stats = {k: v.clone() for k, v in loaded.state_dict().items() if "running" in k}
    before = loaded.body[0][0].weight.detach().clone()
    tuned, rep2 = train_verifier(data, VerifierTrainConfig(epochs=3, batch_size=16, val_parts=20, threads=1,
                                                           freeze_bn=True), log=lambda s: None, init=loaded)
    assert all(torch.equal(tuned.state_dict()[k], v) for k, v in stats.items())
    assert not torch.equal(tuned.body[0][0].weight, before)
    assert rep2.val_auroc > max(rep.val_auroc, 0.95)


def test_loading_a_file_that_is_not_a_candidate_network_is_a_clear_error(tmp_path):
    from magspect.inspect.backend import bundled_model_path

    with pytest.raises(ValueError, match="not a candidate network"):
        net_from_onnx(bundled_model_path())
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="not an ONNX file"):
        net_from_onnx(tmp_path / "junk.onnx")
    seven = net_from_onnx(bundled_model_path().with_name("default-subtypes.onnx"))
    with pytest.raises(ValueError, match="one output"):
        train_verifier(_toy_data(), VerifierTrainConfig(epochs=1, val_parts=20), init=seven)


def test_mining_under_one_light_images_every_view_that_way(tmp_path, monkeypatch):
    """``mine(light=...)`` re-lights the suite's parts (a verifier for a dark-field station), records
    the light, and refuses an unknown one before any work."""
    import json

    import magspect.training.verifier_data as vd

    seen = []

    def record(inspector, part, channels):  # what the model would have been shown
        seen.extend(rv.truth["lighting"] for rv in part.views.values())
        return {k: [] for k in ("patches", "features", "label", "rejectable", "cause", "klass", "view",
                                "truth_class", "truth_subtype")}

    monkeypatch.setattr(vd, "_init_worker", lambda model: None)
    monkeypatch.setitem(vd._STATE, "inspector", None)
    monkeypatch.setattr(vd, "mine_part", record)
    vd.mine("unused.onnx", tmp_path / "dark", range(320_000, 320_003), workers=1, light="darkfield")
    assert seen and set(seen) == {"darkfield"}
    assert json.loads((tmp_path / "dark" / "mined.json").read_text())["light"] == "darkfield"
    seen.clear()
    vd.mine("unused.onnx", tmp_path / "suite", range(320_000, 320_003), workers=1)
    assert len(set(seen)) > 1  # the suite's own draw lights these parts' views differently
    with pytest.raises(ValueError, match="front light"):
        vd.mine("unused.onnx", tmp_path / "uv", range(2), workers=1, light="ultraviolet")
    assert not (tmp_path / "uv").exists()


def _outline_data(n_parts=80, per_part=4, seed=2):
    """Real defects and look-alikes that look the same in the image (a dark line from the patch's
    left edge to its right edge); only the part channels tell them apart: a real one's part covers
    the whole window, a look-alike's line runs on past the part's edge (lint lying over the outline)."""
    rng = np.random.default_rng(seed)
    n = n_parts * per_part
    label = rng.random(n) < 0.4
    p = rng.normal(0, 0.02, (n, 6, PATCH_PX, PATCH_PX)).astype(np.float32)
    p[:, 0, 30:33, :] -= 0.3
    p[:, 1, 30:33, :] = p[:, 3, 30:33, 8:56] = 1
    p[:, 2, 30:33, 8:56] -= 0.3
    p[:, 4:] = 1.0
    edge = rng.integers(16, 48, n)
    for i in np.nonzero(~label)[0]:
        p[i, 4, :, edge[i]:] = 0.0  # off the part beyond the outline
        p[i, 5, :, 32 + (edge[i] - 32) // 2:] = 0.0
    f = np.zeros((n, 4), np.float32)
    f[:, 0], f[:, 3] = 1, rng.uniform(0.5, 1.0, n)
    return {"patches": p.astype(np.float16), "features": f, "label": label, "rejectable": label.copy(),
            "cause": np.where(label, "", "lint"), "seed": np.repeat(np.arange(n_parts), per_part)}


def test_a_four_channel_verifier_widened_computes_the_same_then_learns_from_the_part(tmp_path):
    """What only the part channels show: a 4-channel verifier cannot learn it; widened to 6 it starts
    as it was (the new channels' weights are zero) and, fine-tuned, learns it."""
    data = _outline_data()
    four = {**data, "patches": data["patches"][:, :4]}
    cfg = VerifierTrainConfig(epochs=2, batch_size=16, val_parts=20, threads=1)
    net4, rep4 = train_verifier(four, cfg, log=lambda s: None)
    assert net4.in_channels == 4 and rep4.val_auroc < 0.75  # the image is the same for both labels
    _, va = split_by_seed(data, 20)
    p6, f = torch.from_numpy(data["patches"][va].astype(np.float32)), torch.from_numpy(data["features"][va])
    wide = widen_input(net4.eval(), 6)
    assert wide.in_channels == 6 and wide.body[0][0].weight[:, 4:].abs().sum() == 0
    with torch.no_grad():
        torch.testing.assert_close(wide(p6, f), net4(p6[:, :4], f))
    # fine-tuned from the 4-channel file (as `train-verifier --init-from` does), on 6-channel data
    path = export_verifier(net4, tmp_path / "v4.onnx", build_manifest(rep4, "a" * 64, {}))
    # 8 epochs: with 4 the run was on the edge (seed 0 reached AUROC 0.71 at its last epoch on torch
    # 2.14.1 here, 1.0 one epoch later); with 8, seeds 0-3 are all at 1.0 from the fourth epoch on
    tuned, rep6 = train_verifier(data, VerifierTrainConfig(epochs=8, batch_size=16, val_parts=20, threads=1,
                                                           freeze_bn=True), log=lambda s: None,
                                 init=net_from_onnx(path))
    assert tuned.in_channels == 6 and rep6.val_auroc > 0.95
    out = export_verifier(tuned, tmp_path / "v6.onnx", build_manifest(rep6, "a" * 64, {}),
                          check=(data["patches"][va], data["features"][va]))
    v = Verifier(out)
    assert v.channels == 6 and net_from_onnx(out).in_channels == 6
    with pytest.raises(ValueError, match="6-channel patches"):
        v.scores(data["patches"][va, :4].astype(np.float32), data["features"][va])
    # the other way round is refused: a 6-channel network cannot read 4-channel patches
    with pytest.raises(ValueError, match="takes 6-channel patches; the data has 4"):
        train_verifier(four, cfg, log=lambda s: None, init=net_from_onnx(out))


def test_mined_folders_of_two_patch_layouts_are_not_mixed(tmp_path):
    for name, c in (("four", 4), ("six", 6)):
        (tmp_path / name).mkdir()
        np.savez(tmp_path / name / "chunk-00000000-00000001.npz", patches=np.zeros((2, c, PATCH_PX, PATCH_PX),
                 np.float16), label=np.ones(2, bool), seed=np.arange(2))
    assert load_mined(tmp_path / "six")["patches"].shape[1] == 6
    with pytest.raises(ValueError, match="different patch channels .4 in .*four, 6 in .*six"):
        load_mined([tmp_path / "four", tmp_path / "six"])
    import magspect.training.verifier_data as vd

    assert vd.mined_channels(tmp_path / "four") == 4 and vd.mined_channels(tmp_path / "none") is None
    with pytest.raises(ValueError, match="holds 4-channel candidates; mine 6-channel ones into another folder"):
        vd.mine("unused.onnx", tmp_path / "four", range(2), workers=1, channels=6)
    with pytest.raises(ValueError, match="4 or 6 channels, not 5"):
        vd.mine("unused.onnx", tmp_path / "five", range(2), workers=1, channels=5)
