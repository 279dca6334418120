"""The registry's synthetic check: the first N test parts of a suite through the whole Inspector."""

import numpy as np

from magspect.edge._sim import image_digest
from magspect.inspect.backend import Segmentation
from magspect.inspect.evaluate import SUITE_KEEP, evaluate_suite_subset, suite_key
from magspect.models.manifest import Manifest, Preprocess


class _Oracle:
    """The generator's truth masks as the model (``drop``: these classes' pixels turned good)."""

    def __init__(self, parts, shrink=False, drop=()):
        self.manifest = Manifest(model_name="oracle", in_channels=1,
                                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        self.name, self.sha256, self.provider = "oracle", "0" * 64, "truth"
        self.masks = {image_digest(rv.image): m for p in parts
                      for rv, m in zip(p.views.values(), self._masks(p, shrink, drop), strict=True)}

    @staticmethod
    def _masks(part, shrink, drop):
        out = []
        for rv in part.views.values():
            m = rv.class_mask.copy()
            for c in drop:
                m[m == c] = 1
            if shrink:  # keep only the left half of every chip
                ys, xs = np.nonzero(m == 3)
                if len(xs):
                    m[(m == 3) & (np.arange(m.shape[1])[None, :] > np.median(xs))] = 1
            out.append(m)
        return out

    def predict(self, images, batch_size=8, rois=None):
        ms = [self.masks[image_digest(im)] for im in images]  # each image's own mask
        return [Segmentation(m, np.ones(m.shape, np.float32)) for m in ms]


def test_suite_subset_figures_under_their_key(const_model):
    out = evaluate_suite_subset(const_model, 2)
    assert list(out) == [suite_key(2)] == ["magsynth-v2/test[:2]"]
    figures = out["magsynth-v2/test[:2]"]
    assert set(figures) == set(SUITE_KEEP) and figures["n_parts"] == 2
    assert 0.0 <= figures["escape_rate"] <= 1.0


def test_found_defects_are_sized_against_the_truth():
    """With the truth masks as the model, reported chip and crack sizes sit close to the truth;
    a model that reports a chip half its size shows as a negative length bias."""
    from magspect.datasets import SynthConfig, generate_part
    from magspect.inspect.evaluate import evaluate_parts
    from magspect.inspect.inspector import Inspector

    cfg = SynthConfig(size_px=512, force_defect="chip", out_of_tolerance_rate=0.0, lighting=("coaxial",))
    parts = [generate_part("def-blk-20x10x5-nicuni", s, cfg) for s in (1, 2, 3)]
    exact = evaluate_parts(Inspector(segmenter=_Oracle(parts), verifier=False), parts).summary["defect_sizing_mm"]
    assert exact["chip"]["n"] >= 3 and abs(exact["chip"]["length_bias"]) < 0.25
    short = evaluate_parts(Inspector(segmenter=_Oracle(parts, shrink=True), verifier=False), parts).summary
    assert short["defect_sizing_mm"]["chip"]["length_bias"] < exact["chip"]["length_bias"] - 0.1


def test_rejectable_defects_found_are_counted_by_kind():
    """Every crack rejects: with the truth masks as the model each is found, counted under its kind;
    a model blind to cracks (their pixels good surface) finds none of them."""
    from magspect.datasets import SynthConfig, generate_part
    from magspect.inspect.evaluate import evaluate_parts
    from magspect.inspect.inspector import Inspector

    cfg = SynthConfig(size_px=512, force_defect="crack", out_of_tolerance_rate=0.0, lighting=("darkfield",),
                      backlight=True)  # a dark-field view shows no outline to find the part by
    parts = [generate_part("def-blk-20x10x5-nicuni", s, cfg) for s in (1, 2, 3, 4)]
    kinds = {d["subtype"] for p in parts for d in p.truth["defects"] if d["class_name"] == "crack"}
    seen = evaluate_parts(Inspector(segmenter=_Oracle(parts), verifier=False), parts).summary
    by_kind = seen["rejectable_recall_by_kind"]
    assert {k.split("/")[1] for k in by_kind if k.startswith("crack/")} == kinds
    assert all(v["recall"] == 1.0 and v["n"] >= 1 for k, v in by_kind.items() if k.startswith("crack/"))
    blind = evaluate_parts(Inspector(segmenter=_Oracle(parts, drop=(2,)), verifier=False), parts).summary
    assert all(v["recall"] == 0.0 for k, v in blind["rejectable_recall_by_kind"].items() if k.startswith("crack/"))


def test_rates_per_spec():
    """Each spec's escapes and false rejects counted among its own parts only."""
    from types import SimpleNamespace

    from magspect.inspect.evaluate import PartOutcome, per_spec_rates
    from magspect.types import Verdict

    def outcome(spec, truth, verdict):
        return PartOutcome("p", spec, Verdict(truth), SimpleNamespace(result=SimpleNamespace(verdict=Verdict(verdict))),
                           {})

    rows = per_spec_rates([
        outcome("disc", "PASS", "REJECT"), outcome("disc", "PASS", "PASS"), outcome("disc", "REJECT", "PASS"),
        outcome("block", "REJECT", "REJECT"), outcome("block", "REJECT", "PASS"), outcome("block", "PASS", "REVIEW"),
    ])
    assert list(rows) == ["block", "disc"]
    assert rows["disc"]["n_parts"] == 3 and rows["disc"]["n_conforming"] == 2
    assert (rows["disc"]["escapes"], rows["disc"]["false_rejects"]) == (1, 1)
    assert rows["disc"]["false_reject_rate"] == 0.5 and rows["disc"]["escape_rate"] == 1.0
    assert (rows["block"]["escapes"], rows["block"]["false_rejects"], rows["block"]["n_nonconforming"]) == (1, 0, 2)
    assert rows["block"]["review_rate"] == 1 / 3
