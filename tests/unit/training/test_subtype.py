"""The coating-flaw subtype classifier: labels from mined candidates, the fail-safe operating point,
a short training run on a separable toy problem, the export, and what the runtime does with it."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from magspect.inspect.subtype import OTHER, SUBTYPE_LABELS, SubtypeClassifier, SubtypeError  # noqa: E402
from magspect.inspect.verifier import PATCH_PX, candidate_patches  # noqa: E402
from magspect.training.subtype import (  # noqa: E402
    SubtypeTrainConfig,
    build_subtypes_manifest,
    choose_plausible_at,
    evaluate_subtypes,
    export_subtypes,
    lenient_subtypes,
    subtype_samples,
    train_subtypes,
)
from magspect.training.verifier import VerifierNet  # noqa: E402
from magspect.types import CLASS_IDS, Defect  # noqa: E402


def _mined(rows):
    """rows: (reported class, real?, truth class, truth subtype)."""
    n = len(rows)
    return {
        "patches": np.zeros((n, 4, PATCH_PX, PATCH_PX), np.float16), "features": np.zeros((n, 4), np.float32),
        "label": np.array([r[1] for r in rows], bool), "klass": np.array([r[0] for r in rows]),
        "truth_class": np.array([r[2] for r in rows]), "truth_subtype": np.array([r[3] for r in rows]),
        "seed": np.arange(n),
    }


def test_samples_are_reported_coating_flaws_on_a_truth_defect_labelled_by_its_subtype():
    data = _mined([
        ("coating_flaw", True, "coating_flaw", "pit"),
        ("coating_flaw", True, "crack", "face_crack"),  # a crack called a coating flaw: "other"
        ("coating_flaw", False, "", ""),  # a look-alike: the verifier's business
        ("crack", True, "crack", "edge_crack"),  # not reported as a coating flaw
        ("coating_flaw", True, "coating_flaw", "rust"),
    ])
    rows, y = subtype_samples(data)
    assert rows.tolist() == [0, 1, 4]
    assert [SUBTYPE_LABELS[k] for k in y] == ["pit", OTHER, "rust"]
    old = {k: v for k, v in data.items() if not k.startswith("truth_")}
    with pytest.raises(ValueError, match="mine again"):
        subtype_samples(old)


def test_lenient_subtypes_come_from_the_specs():
    assert lenient_subtypes() == ("pit", "stain")  # every bundled spec allows no blister, peel, rust, scratch


def test_operating_point_keeps_the_true_subtype_plausible_for_strict_flaws():
    k = {lab: i for i, lab in enumerate(SUBTYPE_LABELS)}
    probs = np.full((6, len(SUBTYPE_LABELS)), 0.001)
    # three rust spots (strict), the classifier surer of each; three pits
    for i, p_true in enumerate((0.05, 0.4, 0.9)):
        probs[i, k["rust"]], probs[i, k["pit"]] = p_true, 1 - p_true
    for i in range(3, 6):
        probs[i, k["pit"]], probs[i, k["rust"]] = 0.97, 0.02
    y = np.array([k["rust"]] * 3 + [k["pit"]] * 3)
    strict = np.array([True] * 3 + [False] * 3)
    at = choose_plausible_at(probs, y, strict, strict_coverage=1.0, coverage=0.5)
    assert at == pytest.approx(0.05)  # every rust spot keeps "rust" plausible
    rep = evaluate_subtypes(probs, y, at, ("pit", "stain"))
    assert rep.truth_plausible_strict == 1.0 and rep.relieved_strict == 0.0
    assert rep.relieved_lenient == pytest.approx(1.0)  # the pits: rust at 0.02 is under 0.05
    assert rep.per_label["rust"]["n"] == 3 and rep.per_label["pit"]["accuracy"] == 1.0
    # asking for less coverage on strict flaws raises the bar, and relieves one rust spot: the risk
    at2 = choose_plausible_at(probs, y, strict, strict_coverage=0.6, coverage=0.5)
    assert at2 > at and evaluate_subtypes(probs, y, at2, ("pit", "stain")).relieved_strict == pytest.approx(1 / 3)


def _toy(n_parts=80, per_part=3, seed=0):
    """pit: a dark disc; rust: strong speckle; stain: a faint soft blob; labels by subtype."""
    rng = np.random.default_rng(seed)
    kinds = ["pit", "rust", "stain"]
    n = n_parts * per_part
    yy, xx = np.mgrid[:PATCH_PX, :PATCH_PX]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < 36).astype(np.float32)
    blob = np.exp(-((yy - 32) ** 2 + (xx - 32) ** 2) / 80.0).astype(np.float32)
    p = rng.normal(0, 0.01, (n, 4, PATCH_PX, PATCH_PX)).astype(np.float32)
    sub = rng.choice(kinds, n)
    for i, s in enumerate(sub):
        if s == "pit":
            p[i, 0] -= 0.4 * disc
        elif s == "rust":
            p[i, 0] += 0.2 * disc * rng.normal(0, 1, disc.shape)
        else:
            p[i, 0] -= 0.1 * blob
        p[i, 1] = disc
    f = np.zeros((n, 4), np.float32)
    f[:, 2] = 1
    return {"patches": p.astype(np.float16), "features": f, "label": np.ones(n, bool),
            "klass": np.full(n, "coating_flaw"), "truth_class": np.full(n, "coating_flaw"), "truth_subtype": sub,
            "seed": np.repeat(np.arange(n_parts), per_part)}


def test_training_learns_a_separable_problem_and_exports_what_it_learned(tmp_path):
    data = _toy()
    net, rep = train_subtypes(data, SubtypeTrainConfig(epochs=8, batch_size=16, val_parts=20, threads=1),
                              log=lambda s: None)
    assert rep.accuracy > 0.9
    assert rep.truth_plausible_strict >= 0.995  # every rust spot keeps "rust" plausible
    assert rep.relieved_lenient > 0.5  # and most pits and stains are told apart from rust
    man = build_subtypes_manifest(rep, "a" * 64, {"toy": True})
    rows, _ = subtype_samples(data)
    path = export_subtypes(net, tmp_path / "s.onnx", man, check=(data["patches"][:64], data["features"][:64]))
    c = SubtypeClassifier(path)
    assert c.manifest.plausible_at == pytest.approx(rep.plausible_at) and c.manifest.labels == SUBTYPE_LABELS
    probs = c.probabilities(data["patches"][-60:].astype(np.float32), data["features"][-60:])
    assert probs.shape == (60, len(SUBTYPE_LABELS)) and np.allclose(probs.sum(1), 1, atol=1e-5)
    right = np.array(SUBTYPE_LABELS)[probs.argmax(1)] == data["truth_subtype"][-60:]
    assert right.mean() > 0.9


def _constant(tmp_path, probs: dict[str, float], plausible_at=0.05, sha="a" * 64):
    """A classifier that says ``probs`` whatever it sees (zero weights, the logits in the bias)."""
    net = VerifierNet(n_out=len(SUBTYPE_LABELS))
    with torch.no_grad():
        last = net.head[-1]
        last.weight.zero_()
        last.bias.copy_(torch.log(torch.tensor([max(probs.get(lab, 0.0), 1e-6) for lab in SUBTYPE_LABELS])))
    rep = evaluate_subtypes(np.full((1, len(SUBTYPE_LABELS)), 1 / len(SUBTYPE_LABELS)), np.array([0]),
                            plausible_at, ("pit", "stain"))
    return export_subtypes(net, tmp_path / "c.onnx", build_subtypes_manifest(rep, sha, {}))


def _view_with_flaws():
    img = np.full((200, 200), 120, np.uint8)
    mask = np.full((200, 200), CLASS_IDS["good_surface"], np.uint8)
    img[50:56, 50:56] = 40
    mask[50:56, 50:56] = CLASS_IDS["coating_flaw"]
    flaw = Defect(class_name="coating_flaw", zone="pole_face", length_mm=0.1, width_mm=0.1, area_mm2=0.01,
                  bbox_xyxy_px=(50, 50, 56, 56))
    return img, mask, flaw


def test_apply_sets_the_plausible_subtypes_of_unknown_coating_flaws_only(tmp_path):
    img, mask, flaw = _view_with_flaws()
    scratch = flaw.model_copy(update={"subtype": "scratch"})
    chip = Defect(class_name="chip", zone="edge", length_mm=0.3, width_mm=0.3, area_mm2=0.05,
                  bbox_xyxy_px=(100, 100, 110, 110))
    sure_pit = SubtypeClassifier(_constant(tmp_path, {"pit": 0.97, "stain": 0.02, "rust": 0.01}))
    got = sure_pit.apply(img, mask, [flaw, scratch, chip])
    assert got[0].subtype == "pit" and got[0].possible_subtypes is None
    assert got[0].subtype_scores["pit"] == pytest.approx(0.97, abs=1e-3)
    assert got[1] == scratch and got[2] == chip  # a known subtype and other classes: unchanged

    (tmp_path / "c.onnx").unlink()
    pit_or_blister = SubtypeClassifier(_constant(tmp_path, {"pit": 0.6, "blister": 0.4}))
    (d,) = pit_or_blister.apply(img, mask, [flaw])
    assert d.subtype is None and d.possible_subtypes == ("blister", "pit")

    (tmp_path / "c.onnx").unlink()
    maybe_a_crack = SubtypeClassifier(_constant(tmp_path, {"pit": 0.9, OTHER: 0.1}))
    (d,) = maybe_a_crack.apply(img, mask, [flaw])
    assert d.subtype is None and d.possible_subtypes is None  # judged as any coating flaw
    assert d.subtype_scores[OTHER] == pytest.approx(0.1, abs=1e-3)
    patches = candidate_patches(img, mask, [flaw.bbox_xyxy_px])
    assert patches.shape == (1, 4, PATCH_PX, PATCH_PX)


def test_a_file_that_is_not_a_subtype_classifier_is_a_clear_error(tmp_path):
    from magspect.inspect.verifier import bundled_verifier_path

    with pytest.raises(SubtypeError, match="does not exist"):
        SubtypeClassifier(tmp_path / "none.onnx")
    with pytest.raises(SubtypeError, match="magspect.subtypes"):
        SubtypeClassifier(bundled_verifier_path())  # a verifier, not a subtype classifier
    # a manifest naming a label the runtime cannot judge by (a typo, another taxonomy)
    from magspect.inspect.subtype import SUBTYPES_METADATA_KEY
    from magspect.models.onnx_meta import embed_metadata

    path = _constant(tmp_path, {"pit": 1.0})
    m = SubtypeClassifier(path).manifest
    bad = m.model_copy(update={"labels": (*SUBTYPE_LABELS[:-1], "pitt")})
    embed_metadata(path, SUBTYPES_METADATA_KEY, bad.to_json())
    with pytest.raises(SubtypeError, match="no coating-flaw subtypes"):
        SubtypeClassifier(path)


def test_the_inspector_uses_a_classifier_only_for_the_model_it_was_trained_for(tmp_path):
    from magspect.inspect.backend import Segmenter, bundled_model_path
    from magspect.inspect.inspector import Inspector

    seg = Segmenter(bundled_model_path(), warmup=False)
    path = _constant(tmp_path, {"pit": 1.0}, sha=seg.sha256)
    insp = Inspector(segmenter=seg, subtypes=path, verifier=False)
    assert insp.subtypes_ref is not None and insp.subtypes_ref.sha256 == insp.subtypes.sha256
    other = tmp_path / "o"
    other.mkdir()
    wrong = _constant(other, {"pit": 1.0}, sha="b" * 64)
    with pytest.raises(SubtypeError, match="retrain it for this model"):
        Inspector(segmenter=seg, subtypes=wrong, verifier=False)
    assert Inspector(segmenter=seg, subtypes=False, verifier=False).subtypes_ref is None


def test_evaluation_counts_strict_flaws_a_classifier_relieves(tmp_path):
    """The evaluation's safety figure: with the truth masks as the model and a classifier that calls
    every flaw a pit, the real pits are relieved (allowed kind) and so are the rust spots: the
    strict ones the figure must show."""
    from magspect.datasets import SynthConfig, generate_part
    from magspect.edge._sim import image_digest
    from magspect.inspect.backend import Segmentation
    from magspect.inspect.evaluate import evaluate_parts
    from magspect.inspect.inspector import Inspector
    from magspect.models.manifest import Manifest, Preprocess

    class _Oracle:  # the truth masks as the model
        manifest = Manifest(model_name="oracle", in_channels=1,
                            preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        name, sha256, provider = "oracle", "0" * 64, "truth"

        def predict(self, images, batch_size=8, rois=None):
            return [Segmentation(self.masks[image_digest(im)], np.ones(im.shape[:2], np.float32)) for im in images]

    def parts(kind, seeds):
        cfg = SynthConfig(size_px=512, force_defect=f"coating_flaw/{kind}", out_of_tolerance_rate=0.0,
                          lighting=("coaxial",), max_defects=1)
        return [generate_part("com-blk-20x10x5-zn", s, cfg) for s in seeds]

    ps = parts("pit", (1, 2)) + parts("rust", (3, 4))
    oracle = _Oracle()
    oracle.masks = {image_digest(rv.image): rv.class_mask for p in ps for rv in p.views.values()}
    always_pit = _constant(tmp_path, {"pit": 1.0}, sha=oracle.sha256)
    summary = evaluate_parts(Inspector(segmenter=oracle, verifier=False, subtypes=always_pit), ps).summary
    rel = summary["coating_flaw_subtypes_relieved"]
    assert rel["lenient"]["n"] >= 1 and rel["lenient"]["relieved"] == rel["lenient"]["n"]
    assert rel["strict"]["n"] >= 1 and rel["strict"]["relieved"] == rel["strict"]["n"]  # every rust spot: a mistake
    none = evaluate_parts(Inspector(segmenter=oracle, verifier=False, subtypes=False), ps).summary
    assert none["coating_flaw_subtypes_relieved"]["strict"]["relieved"] == 0
    assert none["coating_flaw_subtypes_relieved"]["lenient"]["relieved"] == 0
