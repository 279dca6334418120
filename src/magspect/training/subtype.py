"""Train and export the coating-flaw subtype classifier (see :mod:`magspect.inspect.subtype`). Needs torch.

Data: the segmentation model's reported coating flaws that lie on a truth defect
(:mod:`magspect.training.verifier_data`, mined on parts that each carry a coating flaw), labelled
with the truth defect's subtype, or "other" where the truth is a crack or a chip the model called a
coating flaw. The same small CNN as the look-alike verifier over the same candidate patches, with
one output per label, trained with cross entropy. Split by part seed like the verifier.

Operating point, fail-safe: a label is *plausible* for a flaw when its probability reaches
``plausible_at``, and the gate judges the strictest plausible subtype. ``plausible_at`` is the highest
value at which the truth label stays plausible for at least ``strict_coverage`` of the held-out
flaws whose truth is *strict* (a subtype no bundled spec allows any of: blister, peel, rust, scratch,
or "other") and ``coverage`` of all of them: the classifier may relieve a pit or a stain of the
strictest reading, and almost never a flaw the specs reject outright.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from magspect.inspect.subtype import (
    OTHER,
    SUBTYPE_LABELS,
    SUBTYPES_METADATA_KEY,
    SubtypeManifest,
    lenient_subtypes,
    plausible_subtypes,
    relieved,
    softmax,
)
from magspect.training.verifier import (
    CandidateTrainConfig,
    VerifierNet,
    candidate_manifest_fields,
    export_candidate_net,
    fit_candidate_net,
    highest_keeping,
    predict_outputs,
    split_by_seed,
)


def subtype_samples(data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, label index)``: the mined candidates reported as coating flaws that lie on a truth
    defect, with the index in :data:`SUBTYPE_LABELS` of that defect's subtype ("other" for a crack
    or chip)."""
    if "truth_class" not in data:
        raise ValueError("mined candidates without truth subtypes (mined before they were recorded): mine again")
    rows = np.nonzero(data["label"] & (data["klass"] == "coating_flaw") & (data["truth_class"] != ""))[0]
    names = np.where(data["truth_class"][rows] == "coating_flaw", data["truth_subtype"][rows], OTHER)
    unknown = sorted(set(names.tolist()) - set(SUBTYPE_LABELS))
    if unknown:
        raise ValueError(f"mined truth subtypes {unknown} are not labels of the classifier {SUBTYPE_LABELS}")
    return rows, np.array([SUBTYPE_LABELS.index(n) for n in names.tolist()], np.int64)


@dataclass
class SubtypeTrainConfig(CandidateTrainConfig):
    epochs: int = 30
    val_parts: int = 400
    strict_coverage: float = 0.995
    coverage: float = 0.98


@dataclass
class SubtypeReport:
    """What the classifier does on the held-out flaws at its operating point."""

    plausible_at: float
    lenient: tuple[str, ...]
    n_train: int
    n_val: int
    accuracy: float  # argmax = truth
    truth_plausible: float  # the truth label in the plausible set, all held-out flaws
    truth_plausible_strict: float  # ... of those whose truth is strict
    relieved_lenient: float  # truly lenient flaws whose plausible set holds lenient subtypes only
    relieved_strict: float  # truly strict flaws whose plausible set holds lenient subtypes only (risk)
    per_label: dict[str, dict[str, float]] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def choose_plausible_at(probs: np.ndarray, y: np.ndarray, strict: np.ndarray, strict_coverage: float,
                        coverage: float) -> float:
    """The highest threshold keeping the truth label plausible for ``strict_coverage`` of the strict
    flaws and ``coverage`` of all (capped to [1e-4, 0.5]: above 0.5 a flaw could have no label)."""
    p_true = probs[np.arange(len(y)), y]
    at = min(highest_keeping(p_true[strict], strict_coverage), highest_keeping(p_true, coverage))
    return float(np.clip(at, 1e-4, 0.5))


def evaluate_subtypes(probs: np.ndarray, y: np.ndarray, at: float, lenient: tuple[str, ...]) -> SubtypeReport:
    labels = SUBTYPE_LABELS
    strict = ~np.array([lab in lenient for lab in labels])[y]
    plaus = probs >= at
    has_truth = plaus[np.arange(len(y)), y]
    # what the runtime would judge each flaw by, and whether that lets it pass as a pit or stain
    relieved_ = np.array([relieved(plausible_subtypes(p, labels, at), lenient) for p in probs], bool)

    def frac(sel: np.ndarray) -> float:
        return float(sel.mean()) if len(sel) else float("nan")

    per_label = {}
    for k, lab in enumerate(labels):
        m = y == k
        per_label[lab] = {"n": int(m.sum()), "accuracy": frac(probs[m].argmax(1) == k) if m.any() else float("nan"),
                          "truth_plausible": frac(has_truth[m]), "relieved": frac(relieved_[m]),
                          "mean_set_size": float(plaus[m].sum(1).mean()) if m.any() else float("nan")}
    return SubtypeReport(
        plausible_at=at, lenient=lenient, n_train=0, n_val=len(y), accuracy=frac(probs.argmax(1) == y),
        truth_plausible=frac(has_truth), truth_plausible_strict=frac(has_truth[strict]),
        relieved_lenient=frac(relieved_[~strict]), relieved_strict=frac(relieved_[strict]), per_label=per_label,
    )


def train_subtypes(
    data: dict[str, np.ndarray], cfg: SubtypeTrainConfig, log=print  # noqa: ANN001
) -> tuple[VerifierNet, SubtypeReport]:
    rows, y_rows = subtype_samples(data)
    tr, va = split_by_seed({"seed": data["seed"][rows]}, cfg.val_parts, cfg.val_seeds)
    if len(tr) == 0 or len(va) == 0:
        raise ValueError("no coating flaws to train on or to hold out")
    sub = {k: data[k][rows] for k in ("patches", "features")}
    counts = np.bincount(y_rows[tr], minlength=len(SUBTYPE_LABELS)).astype(np.float64)
    weight = torch.tensor(np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(counts), 0.0),
                          dtype=torch.float32)  # balanced classes
    torch.manual_seed(cfg.seed)
    net = VerifierNet(n_out=len(SUBTYPE_LABELS), in_channels=int(data["patches"].shape[1]))
    ce = nn.CrossEntropyLoss(weight=weight)
    y_t = torch.from_numpy(y_rows)
    net, history, seconds = fit_candidate_net(
        net, sub, tr, va, y_t, ce,
        # higher is better: the held-out mean log-likelihood of the true label (minus the NLL)
        lambda out: float(np.log(np.clip(softmax(out)[np.arange(len(va)), y_rows[va]], 1e-9, 1)).mean()),
        cfg, log, score_name="val log-likelihood")
    lenient = lenient_subtypes()
    probs = softmax(predict_outputs(net, sub["patches"][va], sub["features"][va]))
    strict = ~np.isin(np.array(SUBTYPE_LABELS)[y_rows[va]], lenient)
    at = choose_plausible_at(probs, y_rows[va], strict, cfg.strict_coverage, cfg.coverage)
    report = evaluate_subtypes(probs, y_rows[va], at, lenient)
    report.n_train, report.epochs, report.seconds = len(tr), history, seconds
    return net, report


def build_subtypes_manifest(report: SubtypeReport, segmenter_sha256: str, training: dict[str, Any],
                            name: str = "subtypes_cnn", also_for: tuple[str, ...] = ()) -> SubtypeManifest:
    return SubtypeManifest(name=name, plausible_at=report.plausible_at,
                           **candidate_manifest_fields(report, segmenter_sha256, training, also_for))


def export_subtypes(net: VerifierNet, path: str | Path, manifest: SubtypeManifest,
                    check: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """ONNX (output ``logits``, one column per label) with the manifest embedded; parity checked."""
    from magspect.models.onnx_meta import embed_metadata

    return export_candidate_net(net, path, "logits",
                                lambda p: embed_metadata(p, SUBTYPES_METADATA_KEY, manifest.to_json()), check,
                                what="subtype classifier")



__all__ = [
    "SubtypeReport",
    "SubtypeTrainConfig",
    "build_subtypes_manifest",
    "choose_plausible_at",
    "evaluate_subtypes",
    "export_subtypes",
    "lenient_subtypes",
    "subtype_samples",
    "train_subtypes",
]
