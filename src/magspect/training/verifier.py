"""Train and export the look-alike verifier (see :mod:`magspect.inspect.verifier`). Needs torch.

Data: :mod:`magspect.training.verifier_data` (the segmentation model's reported candidates on
synthetic parts, labelled against the truth). Split by part seed: the last ``val_parts`` seeds are
held out and choose the operating point. The threshold is the highest that keeps at least
``min_recall_rejectable`` of the held-out candidates that found a defect at/above a reject limit,
and ``min_recall`` of all real ones: the verifier exists to cut false rejects, never to add escapes.

Export: one ONNX file (opset 18, dynamic batch, inputs ``patches`` and ``features``, output
``logit``) with its :class:`~magspect.inspect.verifier.VerifierManifest` embedded; parity with
PyTorch is checked at export as for the segmentation model.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from magspect.inspect.verifier import (
    N_FEATURES,
    N_INPUT_CHANNELS,
    PATCH_PX,
    VERIFIER_METADATA_KEY,
    VerifierManifest,
    check_patch_channels,
)
from magspect.training.bn import freeze_batchnorm
from magspect.training.export import MAX_ABS_LOGIT_DIFF, OPSET, ParityError, ort_session


def _cbr(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VerifierNet(nn.Module):
    """A small CNN over the candidate patch (4 or 6 channels: :func:`candidate_patches`), joined with
    the candidate's features."""

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 32, 64, 64, 96, 96),
        strides: tuple[int, ...] = (1, 2, 1, 2, 1, 2, 1),
        dropout: float = 0.2,
        n_out: int = 1,
        in_channels: int = N_INPUT_CHANNELS,
    ) -> None:
        super().__init__()
        self.in_channels = check_patch_channels(in_channels)
        layers, cin = [], in_channels  # a stride-1 stem: a crack's jagged edge vs a fibre's smooth one
        for w, s in zip(widths, strides, strict=True):
            layers.append(_cbr(cin, w, s))
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(2 * cin + N_FEATURES, 64), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(64, n_out)
        )
        self.widths, self.strides, self.n_out = tuple(widths), tuple(strides), n_out

    def forward(self, patches: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        f = self.body(patches)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3)), features], dim=1)
        return self.head(pooled)


@dataclass
class CandidateTrainConfig:
    """How :func:`fit_candidate_net` trains a network over candidate patches."""

    epochs: int = 36
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_parts: int = 500
    seed: int = 0
    threads: int = 2
    #: keep the batch-norm layers' statistics fixed (fine-tuning a network loaded from ONNX, whose
    #: batch norms are folded into its convolutions: see :func:`net_from_onnx`)
    freeze_bn: bool = False
    #: the held-out parts' seeds ``(start, stop)``; None: the last ``val_parts`` seeds in the data
    val_seeds: tuple[int, int] | None = None


@dataclass
class VerifierTrainConfig(CandidateTrainConfig):
    min_recall_rejectable: float = 0.995
    min_recall: float = 0.98


@dataclass
class VerifierReport:
    """What training measured on the held-out parts, at the chosen operating point."""

    keep_threshold: float
    n_train: int
    n_val: int
    val_real: int
    val_real_rejectable: int
    val_false: int
    kept_real: float  # fraction of real candidates kept
    kept_real_rejectable: float
    dismissed_false: float  # fraction of false candidates dismissed
    dismissed_false_by_cause: dict[str, tuple[int, int]] = field(default_factory=dict)  # cause -> (dismissed, n)
    val_auroc: float = float("nan")
    epochs: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(2, 3)
    return torch.rot90(x, k & 3, dims=(2, 3))


def split_by_seed(
    data: dict[str, np.ndarray], val_parts: int, val_seeds: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): the candidates of the last ``val_parts`` distinct seeds are validation,
    or, with ``val_seeds`` ``(start, stop)``, those of the parts seeded ``start <= seed < stop`` (when
    the candidates come from several seed ranges, e.g. other runs' mined parts added for training)."""
    seed = data["seed"]
    if val_seeds is None:
        seeds = np.unique(seed)
        if len(seeds) <= val_parts:
            raise ValueError(f"{len(seeds)} mined parts: too few to hold out {val_parts} for validation")
        is_val = np.isin(seed, seeds[-val_parts:])
    else:
        start, stop = val_seeds
        is_val = (seed >= start) & (seed < stop)
        if not is_val.any():
            raise ValueError(f"no candidates on the held-out parts (seeds {start}..{stop - 1})")
        if is_val.all():
            raise ValueError(f"every candidate is on the held-out parts (seeds {start}..{stop - 1}): none to train on")
    return np.nonzero(~is_val)[0], np.nonzero(is_val)[0]


def predict_outputs(net: VerifierNet, patches: np.ndarray, features: np.ndarray, batch: int = 512) -> np.ndarray:
    """``N x n_out`` raw outputs (logits) of ``net``."""
    net.eval()
    out = []
    with torch.no_grad():
        for k in range(0, len(patches), batch):
            p = torch.from_numpy(np.asarray(patches[k : k + batch], np.float32))
            f = torch.from_numpy(np.asarray(features[k : k + batch], np.float32))
            out.append(net(p, f).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.n_out), np.float32)


def predict_logits(net: VerifierNet, patches: np.ndarray, features: np.ndarray, batch: int = 512) -> np.ndarray:
    return predict_outputs(net, patches, features, batch).reshape(-1)


def highest_keeping(scores: np.ndarray, share: float) -> float:
    """The highest threshold ``t`` with at least ``share`` of ``scores`` at or above it (1.0 for none)."""
    if len(scores) == 0:
        return 1.0
    s = np.sort(scores)
    drop = int(math.floor((1.0 - share) * len(s) + 1e-9))  # how many may fall under it
    return float(s[drop])  # keeping >= s[drop] keeps len - drop of them


def choose_threshold(
    scores: np.ndarray, label: np.ndarray, rejectable: np.ndarray, min_recall_rejectable: float, min_recall: float
) -> float:
    """The highest threshold on ``scores`` (probabilities) that keeps the required fractions of the
    real candidates (and of the real ones that found a rejectable defect)."""
    t = min(highest_keeping(scores[label & rejectable], min_recall_rejectable),
            highest_keeping(scores[label], min_recall))
    return float(min(t, 0.999))


def fit_candidate_net(
    net: VerifierNet,
    data: dict[str, np.ndarray],
    tr: np.ndarray,
    va: np.ndarray,
    target: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    val_score: Callable[[np.ndarray], float],
    cfg: CandidateTrainConfig,
    log: Callable[[str], None] = print,
    score_name: str = "val AUROC",
) -> tuple[VerifierNet, list[dict[str, float]], float]:
    """Train ``net`` on the candidates ``tr`` (``target[i]`` per candidate, for ``loss_fn(outputs,
    target)``) for ``cfg.epochs``: AdamW, one-cycle, dihedral flips and contrast gain. After each
    epoch ``val_score(outputs on va)``; the best epoch's weights are kept. Returns (net, history, s)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    patches, feats = data["patches"], data["features"].astype(np.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    history: list[dict[str, float]] = []
    best_state, best = None, -math.inf
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        net.train()
        if cfg.freeze_bn:
            freeze_batchnorm(net)
        order = rng.permutation(tr)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = np.sort(order[s * cfg.batch_size : (s + 1) * cfg.batch_size])
            p = torch.from_numpy(patches[idx].astype(np.float32))
            p = _dihedral(p, int(rng.integers(8)))
            gain = torch.from_numpy(rng.uniform(0.75, 1.33, (len(idx), 1, 1, 1)).astype(np.float32))
            p[:, [0, 2]] = p[:, [0, 2]] * gain  # contrast varies with lighting and coating
            f = torch.from_numpy(feats[idx])
            loss = loss_fn(net(p, f), target[torch.from_numpy(idx)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        score = val_score(predict_outputs(net, patches[va], feats[va]))
        history.append({"epoch": epoch + 1, "train_loss": total / steps_per_epoch, "val_score": score,
                        "seconds": time.perf_counter() - t0})
        log(f"epoch {epoch + 1}/{cfg.epochs}  loss {total / steps_per_epoch:.4f}  {score_name} {score:.4f}  "
            f"{time.perf_counter() - t0:.0f} s")
        if score > best:
            best, best_state = score, {k: v.detach().clone() for k, v in net.state_dict().items()}
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return net, history, time.perf_counter() - t0


def widen_input(net: VerifierNet, channels: int) -> VerifierNet:
    """``net`` taking ``channels``-channel patches: the first convolution's weights for the channels
    it did not have are zero, so it computes what ``net`` did until training uses them (a verifier
    trained on 4-channel patches fine-tuned on 6-channel ones, which add the part)."""
    if channels == net.in_channels:
        return net
    if channels < net.in_channels:
        raise ValueError(f"the network takes {net.in_channels}-channel patches; the data has {channels}")
    wide = VerifierNet(net.widths, net.strides, n_out=net.n_out, in_channels=channels)
    state = net.state_dict()
    w = state["body.0.0.weight"]
    state["body.0.0.weight"] = torch.cat([w, w.new_zeros(w.shape[0], channels - w.shape[1], *w.shape[2:])], dim=1)
    wide.load_state_dict(state)
    return wide.train(net.training)


def net_from_onnx(path: str | Path) -> VerifierNet:
    """A :class:`VerifierNet` with the weights of a candidate network's ONNX export (a verifier or a
    subtype classifier): the start of a fine-tuning run. The export folds each batch norm into its
    convolution; here the convolution takes the folded weights and the batch norm becomes the
    identity plus the folded bias, so the network computes what the file does. Train it with
    ``freeze_bn`` (the folded statistics are not batch statistics). Raises ValueError for a file that
    is not such a network."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - onnx raises several types for a bad file
        raise ValueError(f"{path}: not an ONNX file ({exc})") from exc
    init = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    names = [f"body.{k}.0.weight" for k in range(len(convs))]
    if not convs or any(n not in init or n + "_bias" not in init for n in names) or "head.3.weight" not in init:
        raise ValueError(f"{path}: not a candidate network exported by magspect (verifier or subtype classifier)")
    strides = tuple(int(next((a.ints[0] for a in n.attribute if a.name == "strides"), 1)) for n in convs)
    widths = tuple(int(init[n].shape[0]) for n in names)
    net = VerifierNet(widths, strides, n_out=int(init["head.3.weight"].shape[0]),
                      in_channels=int(init[names[0]].shape[1]))
    state = net.state_dict()
    for k, name in enumerate(names):
        bn = f"body.{k}.1"
        eps = net.body[k][1].eps
        state[f"body.{k}.0.weight"] = torch.from_numpy(init[name].copy())
        state[f"{bn}.weight"] = torch.ones(widths[k])
        state[f"{bn}.bias"] = torch.from_numpy(init[name + "_bias"].copy())
        state[f"{bn}.running_mean"] = torch.zeros(widths[k])
        state[f"{bn}.running_var"] = torch.full((widths[k],), 1.0 - eps)
    for name in ("head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"):
        state[name] = torch.from_numpy(init[name].copy())
    net.load_state_dict(state)
    return net.eval()


def train_verifier(
    data: dict[str, np.ndarray],
    cfg: VerifierTrainConfig,
    log: Callable[[str], None] = print,
    init: VerifierNet | None = None,
) -> tuple[VerifierNet, VerifierReport]:
    """Train the verifier on mined candidates (from scratch, or on from ``init``'s weights:
    :func:`net_from_onnx`, with ``cfg.freeze_bn``) and choose its operating point on the held-out parts."""
    from magspect.inspect.metrics import auroc

    tr, va = split_by_seed(data, cfg.val_parts, cfg.val_seeds)
    y = data["label"].astype(np.float32)
    n_pos = float(y[tr].sum())
    if n_pos == 0 or n_pos == len(tr):
        raise ValueError("the training candidates must include real defects and look-alikes")
    torch.manual_seed(cfg.seed)
    if init is not None and init.n_out != 1:
        raise ValueError(f"a verifier has one output; the network to start from has {init.n_out}")
    channels = int(data["patches"].shape[1])
    net = VerifierNet(in_channels=channels) if init is None else widen_input(init, channels)
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(tr) - n_pos) / n_pos))
    net, history, seconds = fit_candidate_net(
        net, data, tr, va, torch.from_numpy(y), lambda out, t: bce(out.reshape(-1), t),
        lambda out: auroc(out.reshape(-1).tolist(), y[va].astype(bool).tolist()), cfg, log)
    for h in history:
        h["val_auroc"] = h.pop("val_score")
    report = evaluate_verifier(net, data, va, cfg)
    report.n_train, report.epochs, report.seconds = len(tr), history, seconds
    return net, report


def evaluate_verifier(net: VerifierNet, data: dict[str, np.ndarray], idx: np.ndarray, cfg: VerifierTrainConfig,
                      threshold: float | None = None) -> VerifierReport:
    """Choose (or apply) the operating point on the candidates ``idx`` and say what it does there."""
    from magspect.inspect.metrics import auroc

    logits = predict_logits(net, data["patches"][idx], data["features"][idx].astype(np.float32))
    prob = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    label, rej, cause = data["label"][idx], data["rejectable"][idx], data["cause"][idx]
    t = threshold if threshold is not None else choose_threshold(
        prob, label, rej, cfg.min_recall_rejectable, cfg.min_recall)
    report = candidate_report(prob, label, rej, cause, t)
    report.val_auroc = auroc(logits.tolist(), label.tolist())
    return report


def candidate_report(prob: np.ndarray, label: np.ndarray, rejectable: np.ndarray, cause: np.ndarray,
                     threshold: float) -> VerifierReport:
    """What keeping the candidates with ``prob >= threshold`` does: the share of real ones (and of
    real ones on a rejectable defect) kept, of look-alikes dismissed, overall and by cause. No AUROC
    (``val_auroc`` is NaN: the caller ranks by what it has, e.g. unsaturated logits)."""
    label, rej = np.asarray(label, bool), np.asarray(rejectable, bool)
    keep = np.asarray(prob) >= threshold
    by_cause: dict[str, tuple[int, int]] = {}
    for c, n in sorted(Counter(cause[~label].tolist()).items()):
        sel = (~label) & (cause == c)
        by_cause[c] = (int((~keep[sel]).sum()), int(n))

    def frac(sel: np.ndarray, of: np.ndarray) -> float:
        return float(sel.sum() / of.sum()) if of.sum() else float("nan")

    return VerifierReport(
        keep_threshold=float(threshold), n_train=0, n_val=len(label), val_real=int(label.sum()),
        val_real_rejectable=int((label & rej).sum()), val_false=int((~label).sum()),
        kept_real=frac(keep & label, label), kept_real_rejectable=frac(keep & label & rej, label & rej),
        dismissed_false=frac(~keep & ~label, ~label), dismissed_false_by_cause=by_cause,
    )


def export_verifier(net: VerifierNet, path: str | Path, manifest: VerifierManifest,
                    check: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """ONNX export with the manifest embedded; parity with PyTorch (float64) on ``check`` inputs."""
    return export_candidate_net(net, path, "logit", lambda p: embed_verifier_manifest(p, manifest), check)


def export_candidate_net(
    net: VerifierNet, path: str | Path, output: str, embed: Callable[[Path], Any],
    check: tuple[np.ndarray, np.ndarray] | None = None, what: str = "verifier",
) -> Path:
    """A candidate-patch network to one ONNX file (opset 18, dynamic batch, inputs ``patches`` and
    ``features``, output ``output``), ``embed(path)`` writing its manifest; parity with PyTorch
    (float64) on ``check`` inputs, the file removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = net.eval().cpu()
    batch = torch.export.Dim("batch", min=1, max=4096)
    example = (torch.rand(3, net.in_channels, PATCH_PX, PATCH_PX), torch.rand(3, N_FEATURES))
    torch.onnx.export(
        net, example, str(path), dynamo=True, opset_version=OPSET, external_data=False,
        input_names=["patches", "features"], output_names=[output],
        dynamic_shapes={"patches": {0: batch}, "features": {0: batch}}, verbose=False,
    )
    embed(path)
    if check is not None:
        p, f = (np.ascontiguousarray(a, np.float32) for a in check)
        got = ort_session(path).run([output], {"patches": p, "features": f})[0]
        ref = net.double()(torch.from_numpy(p).double(), torch.from_numpy(f).double()).detach().numpy()
        net.float()
        diff = float(np.abs(got - ref).max()) if len(p) else 0.0
        if diff > MAX_ABS_LOGIT_DIFF:
            path.unlink()
            raise ParityError(f"{what} export: onnxruntime vs PyTorch max |logit diff| {diff:.2e} > "
                              f"{MAX_ABS_LOGIT_DIFF:.0e}")
    return path


def embed_verifier_manifest(path: str | Path, manifest: VerifierManifest) -> Path:
    """Write ``manifest`` into the verifier's ONNX metadata (replacing one already there)."""
    from magspect.models.onnx_meta import embed_metadata

    return embed_metadata(path, VERIFIER_METADATA_KEY, manifest.to_json())


def build_manifest(report: VerifierReport, segmenter_sha256: str, training: dict[str, Any],
                   name: str = "verifier_cnn", also_for: tuple[str, ...] = (),
                   review_below: float | None = None) -> VerifierManifest:
    return VerifierManifest(
        name=name, keep_threshold=report.keep_threshold, review_below=review_below,
        **candidate_manifest_fields(report, segmenter_sha256, training, also_for),
    )


def candidate_manifest_fields(report: Any, segmenter_sha256: str, training: dict[str, Any],
                              also_for: tuple[str, ...]) -> dict[str, Any]:
    """The :class:`~magspect.inspect.verifier.CandidateModelManifest` fields every candidate model's
    manifest fills alike: what it serves, how it was trained (with ``report`` minus its epochs), when."""
    from magspect.training.loop import git_commit

    return {
        "segmenter_sha256": segmenter_sha256, "also_for_sha256": also_for,
        "training": {**training, "report": {k: v for k, v in report.as_dict().items() if k != "epochs"}},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "git_commit": git_commit(),
    }


def save_report(report: Any, out_dir: Path) -> None:
    """``report.json`` in ``out_dir``: a training report's ``as_dict()`` (verifier or subtype classifier)."""
    (out_dir / "report.json").write_text(json.dumps(report.as_dict(), indent=2, default=float))


__all__ = [
    "widen_input",
    "CandidateTrainConfig",
    "VerifierNet",
    "VerifierReport",
    "VerifierTrainConfig",
    "build_manifest",
    "candidate_manifest_fields",
    "embed_verifier_manifest",
    "choose_threshold",
    "candidate_report",
    "evaluate_verifier",
    "export_candidate_net",
    "export_verifier",
    "fit_candidate_net",
    "highest_keeping",
    "net_from_onnx",
    "predict_outputs",
    "split_by_seed",
    "train_verifier",
]
