"""Fine-tune a defect model on real labelled data mixed with synthetic data (``magspect retrain``).

One YAML file (:class:`RetrainConfig`) says where the parent model comes from (the bundled ONNX, any
magspect ONNX export, a registry version or a training checkpoint), which real data to use (mask
folder or COCO export, through a class map), the share of synthetic views, and the schedule. The job:

1. reads the real data and splits it by content hash (:func:`~magspect.training.realdata.split_by_content`);
2. rebuilds the parent network in PyTorch (from an ONNX export: the BatchNorm-folded weights are
   loaded with identity BatchNorm, checked against onnxruntime);
3. fine-tunes with BatchNorm frozen on a mix of real and synthetic crops, validates on the real
   validation split every ``early_stop.every_steps`` and stops when it no longer improves;
4. exports the best state to ONNX + manifest (parity-checked, :func:`export_checkpoint`), measures it
   on the real validation split (and optionally a magsynth-v2 test subset), and registers it with
   its lineage in the model registry (not promoted: see ``magspect models promote``).

Under ``torchrun`` it runs DDP (gloo on CPU, NCCL on GPUs); rank 0 validates, exports, registers.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from magspect.training.config import LossSection, SynthSource
from magspect.training.realdata import DEFAULT_SPLIT_SALT, LabelledSet, Split, open_labelled, split_by_content

MAX_PARENT_LOGIT_DIFF = 1e-3


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RealSection(_Cfg):
    kind: Literal["mask-folder", "coco"] = "mask-folder"
    path: Path
    class_map: Path | None = None  # YAML label: class (required for COCO)
    image_root: Path | None = None  # COCO: where the images are, if not beside the JSON
    val_fraction: float = Field(0.2, gt=0, lt=1)
    split_salt: str = DEFAULT_SPLIT_SALT
    max_side_px: int | None = Field(None, ge=32)  # downscale larger images (aspect kept) for training
    defect_image_share: float = Field(0.5, ge=0, le=1)  # share of real views drawn from defective images


class SynthMix(_Cfg):
    ratio: float = Field(0.3, ge=0, lt=1)  # share of training views that are synthetic
    folder: Path | None = None  # a rendered FolderSource cache (images/ + masks/), e.g. a train run's data
    source: SynthSource = Field(
        default_factory=lambda: SynthSource(seed=300000, synth={"size_px": 512, "defect_rate": 0.85})
    )


class FineTuneSection(_Cfg):
    steps: int = Field(600, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_steps: int = Field(20, ge=0)
    crop_px: int = Field(128, ge=32)
    crops_per_part: int = Field(4, ge=1)
    defect_bias: float = Field(0.6, ge=0, le=1)
    augment: bool = True
    freeze_bn: bool = True  # BatchNorm in eval mode: small batches, and ONNX parents have it folded
    grad_clip: float | None = 5.0
    time_budget_min: float | None = Field(None, gt=0)
    workers: int = Field(0, ge=0)


class EarlyStopSection(_Cfg):
    every_steps: int = Field(50, ge=1)
    patience: int = Field(4, ge=1)  # validations without improvement before stopping
    min_steps: int = Field(0, ge=0)  # never stop early before this step (a parent far from the data)
    metric: Literal["mean_iou", "image_auroc"] = "mean_iou"
    min_delta: float = 0.002
    max_val_images: int | None = Field(None, ge=1)  # validate on the first N of the split (speed)


class EvalSection(_Cfg):
    min_defect_px: int = Field(12, ge=1)  # an image is flagged when this many pixels are predicted defect
    magsynth_n: int = Field(0, ge=0)  # also run the first N magsynth-v2 test parts (0: skip)


class ExportSection(_Cfg):
    enabled: bool = True
    int8: bool = False
    # the model issue's parity limits (ONNX Runtime vs PyTorch); raise only with a reason, it is recorded
    max_abs_logit_diff: float = Field(1e-4, gt=0)
    min_argmax_agreement: float = Field(0.9999, gt=0, le=1)


class RegistrySection(_Cfg):
    path: Path | None = None  # None: $MAGSPECT_MODELS, $MAGSPECT_HOME/models or ./magspect-models
    enabled: bool = True  # register the exported model
    notes: str = ""


class RetrainConfig(_Cfg):
    out_dir: Path = Path("runs/retrain")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = 2
    progress: bool = True
    # bundled | PATH.onnx | PATH.pt | registry:VERSION (e.g. registry:promoted) | scratch:MODEL_NAME
    parent: str = "bundled"
    real: RealSection
    synth: SynthMix = Field(default_factory=SynthMix)
    train: FineTuneSection = Field(default_factory=FineTuneSection)
    loss: LossSection = Field(default_factory=LossSection)
    early_stop: EarlyStopSection = Field(default_factory=EarlyStopSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    export: ExportSection = Field(default_factory=ExportSection)
    registry: RegistrySection = Field(default_factory=RegistrySection)

    @model_validator(mode="after")
    def _check(self) -> RetrainConfig:
        if self.train.crop_px % 32:
            raise ValueError("train.crop_px must be a multiple of 32")
        if self.real.kind == "coco" and self.real.class_map is None:
            raise ValueError("real.kind 'coco' needs real.class_map")
        if self.loss.class_weights is not None and len(self.loss.class_weights) != 5:
            raise ValueError("loss.class_weights needs one weight per class (5)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> RetrainConfig:
        """Relative paths in the file are read relative to the current directory (as ``magspect train``)."""
        return cls.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    def sha256(self) -> str:
        import hashlib

        d = json.loads(self.model_dump_json(exclude={"out_dir", "progress", "registry"}))
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


# -- data -----------------------------------------------------------------------------------------


def load_real(cfg: RetrainConfig) -> tuple[LabelledSet, Split]:
    from magspect.datasets.labelled import ClassMap

    r = cfg.real
    cmap = ClassMap.from_file(r.class_map) if r.class_map else None
    data = open_labelled(r.kind, r.path, cmap, r.image_root)
    return data, split_by_content(data, r.val_fraction, r.split_salt)


def fit_for_training(image: np.ndarray, mask: np.ndarray, crop_px: int, max_side_px: int | None):
    """Downscale images longer than ``max_side_px`` (area for the image, nearest for the mask), then
    reflect-pad both to at least ``crop_px`` a side, so small real images give whole crops whose
    labels stay aligned."""
    h, w = mask.shape
    if max_side_px and max(h, w) > max_side_px:
        s = max_side_px / max(h, w)
        size = (max(1, round(w * s)), max(1, round(h * s)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST)
        h, w = mask.shape
    ph, pw = max(0, crop_px - h), max(0, crop_px - w)
    if ph or pw:
        # reflect needs pad < size; tile the reflection in steps for very small images
        while ph or pw:
            sh, sw = min(ph, h - 1), min(pw, w - 1)
            image = cv2.copyMakeBorder(image, 0, sh, 0, sw, cv2.BORDER_REFLECT_101)
            mask = cv2.copyMakeBorder(mask, 0, sh, 0, sw, cv2.BORDER_REFLECT_101)
            h, w = mask.shape
            ph, pw = max(0, crop_px - h), max(0, crop_px - w)
    return image, mask


class RealSource:
    """Training views from a labelled set, kept in memory, defective images drawn with a set share."""

    def __init__(self, data: LabelledSet, crop_px: int, max_side_px: int | None, defect_image_share: float) -> None:
        self.data, self.crop_px, self.max_side_px = data, crop_px, max_side_px
        self.share = defect_image_share
        self.defective = [i for i, it in enumerate(data.items) if it.has_defect]
        self.clean = [i for i, it in enumerate(data.items) if not it.has_defect]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i not in self._cache:
            self._cache[i] = fit_for_training(*self.data.load(i), self.crop_px, self.max_side_px)
        return self._cache[i]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pool = self.defective if (self.defective and (not self.clean or rng.random() < self.share)) else self.clean
        return self.get(pool[int(rng.integers(len(pool)))])


class MixedSource:
    """A synthetic view with probability ``ratio``, else a real one."""

    def __init__(self, real: Any, synth: Any | None, ratio: float) -> None:
        self.real, self.synth, self.ratio = real, synth, ratio if synth is not None else 0.0

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.synth is not None and rng.random() < self.ratio:
            return self.synth.sample(rng)
        return self.real.sample(rng)


def build_synth_source(cfg: RetrainConfig) -> Any | None:
    from magspect.training.data import FolderSource, SynthStreamSource

    if cfg.synth.ratio <= 0:
        return None
    if cfg.synth.folder is not None:
        return FolderSource(cfg.synth.folder)
    s = cfg.synth.source
    return SynthStreamSource(s.specs, s.views, s.seed, s.n_parts, s.synth)


# -- parent model -----------------------------------------------------------------------------------


@dataclass
class Parent:
    kind: str  # onnx | checkpoint | scratch
    ref: str  # what the config said
    path: Path | None
    sha256: str | None
    model: Any  # torch.nn.Module
    info: dict[str, Any] = field(default_factory=dict)  # model_name, kwargs, in_chans, bit_depth, um_per_px...
    registry_version: str | None = None

    def lineage(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "kind": self.kind,
            "path": str(self.path) if self.path else None,
            "sha256": self.sha256,
            "registry_version": self.registry_version,
            "model_name": self.info.get("model_name"),
        }


def load_onnx_weights(model: Any, onnx_path: str | Path) -> None:
    """Load a magspect ONNX export's weights into a freshly built ``model`` of the same architecture.

    The exporter folds each BatchNorm into the convolution before it (weight and a new bias); the
    folded weights are loaded into the convolution and the BatchNorm is set to the identity plus
    that bias (gamma 1, running mean 0, running var 1 - eps), which is exact in eval mode. Raises
    ``ValueError`` when a parameter cannot be matched."""
    import onnx
    import torch
    from onnx import numpy_helper

    proto = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    conv_bias = {n.input[1]: (n.input[2] if len(n.input) > 2 and n.input[2] else None)
                 for n in proto.graph.node if n.op_type == "Conv" and len(n.input) > 1}
    prefix = "net." if any(k.startswith("net.") for k in inits) else ""
    modules = dict(model.named_modules())
    bn_after: dict[str, str] = {}
    for name, mod in modules.items():
        if isinstance(mod, torch.nn.Sequential):
            kids = list(mod.named_children())
            for (a, ma), (b, mb) in zip(kids, kids[1:], strict=False):
                if isinstance(ma, torch.nn.Conv2d) and isinstance(mb, torch.nn.BatchNorm2d):
                    bn_after[f"{name}.{a}" if name else a] = f"{name}.{b}" if name else b
    done: set[str] = set()
    with torch.no_grad():
        for name, mod in modules.items():
            if not isinstance(mod, torch.nn.Conv2d):
                continue
            wname = f"{prefix}{name}.weight"
            split = _split_reduce_names(prefix, name)
            if wname not in inits and split[0] in inits and split[1] in inits:
                # a lite decoder block's reduce exported split around its upsampling
                # (magspect.models.unet.SplitReduce): the halves side by side are the folded weight
                wname = split[1]
                inits[wname] = np.concatenate([inits[split[0]], inits[split[1]]], axis=1)
            if wname not in inits:
                raise ValueError(f"{onnx_path}: no weight {wname!r} for convolution {name!r}")
            w = torch.from_numpy(inits[wname].copy())
            if tuple(w.shape) != tuple(mod.weight.shape):
                raise ValueError(
                    f"{onnx_path}: {wname} has shape {tuple(w.shape)}, model wants {tuple(mod.weight.shape)}"
                )
            mod.weight.copy_(w)
            done.add(f"{name}.weight")
            bname = conv_bias.get(wname)
            if bname is not None and bname not in inits:
                raise ValueError(f"{onnx_path}: bias {bname!r} of {name!r} is not an initializer")
            b = torch.from_numpy(inits[bname].copy()) if bname else torch.zeros(w.shape[0])
            if name in bn_after:
                bn_name = bn_after[name]
                bn = modules[bn_name]
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                done.update(f"{bn_name}.{k}" for k in ("weight", "bias", "running_mean", "running_var",
                                                       "num_batches_tracked"))
                if mod.bias is not None:
                    mod.bias.zero_()
                    done.add(f"{name}.bias")
            elif mod.bias is not None:
                mod.bias.copy_(b)
                done.add(f"{name}.bias")
            elif bname and float(b.abs().max()) > 0:
                raise ValueError(f"{onnx_path}: convolution {name!r} has a bias in ONNX but none in the model")
        state = model.state_dict()
        for key, tensor in state.items():  # anything else stored under its own name (mean, std, unfolded BN)
            if key in done:
                continue
            if prefix + key in inits:
                tensor.copy_(torch.from_numpy(inits[prefix + key].copy()).reshape(tensor.shape))
                done.add(key)
        left = [k for k in state if k not in done and not k.endswith("num_batches_tracked")]
        if left:
            raise ValueError(f"{onnx_path}: no ONNX weights for {left[:5]}{' ...' if len(left) > 5 else ''}")


def _split_reduce_names(prefix: str, conv_name: str) -> tuple[str, str]:
    """ONNX weight names of a split ``...reduce.0`` convolution: (upsampled half, skip half)."""
    base = conv_name[: -len(".0")] if conv_name.endswith("reduce.0") else conv_name
    return f"{prefix}{base}.conv_x.weight", f"{prefix}{base}.conv_s.weight"


def _check_against_onnx(model: Any, onnx_path: Path, manifest: Any) -> float:
    import torch

    from magspect.models.manifest import full_resolution_logits
    from magspect.training.export import ort_session

    x = np.random.default_rng(0).random((1, manifest.in_channels, 96, 128), dtype=np.float32)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(x)).numpy()
    got = full_resolution_logits(ort_session(onnx_path, threads=1).run(["logits"], {"image": x})[0],
                                 manifest.output_stride)
    return float(np.abs(got - ref).max())


def resolve_parent(ref: str, registry_path: Path | None = None) -> Parent:
    """Build the parent network (eval mode) from ``ref``; see :attr:`RetrainConfig.parent`."""
    from magspect.models import DEFAULT_MODEL_PATH, create_model
    from magspect.models.manifest import Manifest
    from magspect.models.registry import ModelRegistry, RegistryError
    from magspect.training.checkpoint import load_checkpoint, model_from_checkpoint
    from magspect.training.export import sha256_file

    version = None
    if ref.startswith("scratch:"):
        name = ref.split(":", 1)[1]
        model = create_model(name, in_chans=1)
        return Parent("scratch", ref, None, None, model.eval(), {"model_name": name, "model_kwargs": {},
                                                                  "in_chans": 1, "bit_depth": 8})
    if ref == "bundled":
        path = Path(DEFAULT_MODEL_PATH)
        if not path.is_file():
            raise FileNotFoundError(
                f"the bundled default model {path} is not there; set parent to a .onnx export, a .pt "
                "checkpoint, registry:VERSION or scratch:MODEL_NAME"
            )
    elif ref.startswith("registry:"):
        reg = ModelRegistry(registry_path)
        try:
            mv = reg.get(ref.split(":", 1)[1])
        except RegistryError as exc:
            raise FileNotFoundError(str(exc)) from None
        path, version = mv.onnx_path, mv.version
    else:
        path = Path(ref)
        if not path.is_file():
            raise FileNotFoundError(f"parent model {path} not found")
    if path.suffix == ".pt":
        ck = load_checkpoint(path)
        info = {k: ck.get(k) for k in ("model_name", "model_kwargs", "in_chans", "bit_depth", "um_per_px",
                                       "um_per_px_range")}
        return Parent("checkpoint", ref, path, sha256_file(path), model_from_checkpoint(ck), info)
    manifest = Manifest.from_onnx(path)
    if manifest.precision != "fp32":
        raise ValueError(f"{path} is an {manifest.precision} model; fine-tune from its FP32 export")
    model = create_model(manifest.model_name, in_chans=manifest.in_channels, **manifest.model_kwargs)
    load_onnx_weights(model, path)
    diff = _check_against_onnx(model, path, manifest)
    if diff > MAX_PARENT_LOGIT_DIFF:
        raise ValueError(f"{path}: weights recovered from ONNX differ from onnxruntime by {diff:.3g} (limit "
                         f"{MAX_PARENT_LOGIT_DIFF:g}); fine-tune from its training checkpoint instead")
    info = {
        "model_name": manifest.model_name,
        "model_kwargs": dict(manifest.model_kwargs),
        "in_chans": manifest.in_channels,
        "bit_depth": manifest.preprocess.bit_depth,
        "um_per_px": manifest.um_per_px,
        "um_per_px_range": manifest.um_per_px_range,
        "onnx_vs_torch_max_abs_logit_diff": diff,
    }
    return Parent("onnx", ref, path, sha256_file(path), model.eval(), info, version)


# -- evaluation -------------------------------------------------------------------------------------


class TorchSegmenter:
    """The ``logits(images)`` of :class:`magspect.inspect.backend.Segmenter`, for a PyTorch model."""

    def __init__(self, model: Any, in_chans: int, device: Any = "cpu") -> None:
        self.model, self.in_chans, self.device = model, in_chans, device

    def logits(self, images: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        from magspect.training.data import to_unit_float
        from magspect.training.validate import predict_logits

        out = []
        for image in images:
            x = torch.from_numpy(to_unit_float(image, self.in_chans).transpose(2, 0, 1).copy())[None].to(self.device)
            out.append(predict_logits(self.model, x)[0].float().cpu().numpy())
        return out


class _Recorder:
    """Passes ``logits`` through and remembers each image's predicted defect pixel count."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.defect_px = inner, []

    def logits(self, images: list[np.ndarray]) -> list[np.ndarray]:
        out = self.inner.logits(images)
        self.defect_px += [int((lg.argmax(axis=0) >= 2).sum()) for lg in out]
        return out


def evaluate_real(segmenter: Any, data: LabelledSet, min_defect_px: int = 12) -> dict[str, Any]:
    """:func:`~magspect.inspect.evaluate.evaluate_labelled` (image AUROC, IoU per class) plus the image
    gate on real data: an image is flagged when ``min_defect_px`` pixels or more are predicted defect;
    ``escape_rate`` is the share of defective images not flagged, ``false_reject_rate`` the share of
    defect-free images flagged."""
    from magspect.inspect.evaluate import evaluate_labelled

    rec = _Recorder(segmenter)
    out = evaluate_labelled(rec, data)
    flagged = [n >= min_defect_px for n in rec.defect_px]
    bad = [it.has_defect for it in data.items]
    n_bad, n_good = sum(bad), len(bad) - sum(bad)
    escapes = sum(b and not f for b, f in zip(bad, flagged, strict=True))
    false_rej = sum(f and not b for b, f in zip(bad, flagged, strict=True))
    out.update({
        "escape_rate": escapes / n_bad if n_bad else None,
        "false_reject_rate": false_rej / n_good if n_good else None,
        "n_escapes": escapes,
        "n_false_rejects": false_rej,
        "min_defect_px": min_defect_px,
    })
    out.pop("warnings", None)
    return out


def real_suite_key(split: Split) -> str:
    """Registry metrics key of a real validation split: the same images give the same key."""
    return f"real-val:{split.val_sha256[:12]}"


# -- training ---------------------------------------------------------------------------------------


def _lr(cfg: RetrainConfig, step: int, progress: float) -> float:
    warm = cfg.train.warmup_steps
    if step < warm:
        return cfg.train.lr * (step + 1) / warm
    return cfg.train.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0))))


def run_retrain(cfg: RetrainConfig, log=print) -> dict[str, Any]:  # noqa: ANN001, C901
    """Run the whole job; returns the summary (also ``out_dir/summary.json``) on rank 0."""
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from magspect.training.bn import freeze_batchnorm
    from magspect.training.checkpoint import save_checkpoint
    from magspect.training.data import CropStream
    from magspect.training.loop import git_commit, setup_process
    from magspect.training.losses import SegLoss

    out_dir = Path(cfg.out_dir)
    proc = setup_process(cfg.device, cfg.num_threads, cfg.seed, out_dir, cfg.model_dump_json(indent=2))
    distributed, rank, local_rank = proc.distributed, proc.rank, proc.local_rank
    is_main, use_cuda, device = proc.is_main, proc.use_cuda, proc.device
    say = log if is_main else (lambda *a, **k: None)

    data, split = load_real(cfg)
    say(f"real data {cfg.real.path}: {len(data)} images; split by content hash -> {len(split.train)} train "
        f"({split.as_dict()['n_train_defective']} defective), {len(split.val)} validation "
        f"({split.as_dict()['n_val_defective']} defective)")
    for w in data.warnings[:5]:
        say(f"warning: {w}")
    parent = resolve_parent(cfg.parent, cfg.registry.path)
    say(f"parent: {parent.ref} ({parent.kind}, {parent.info.get('model_name')})")
    in_chans = int(parent.info["in_chans"])
    model = parent.model.to(device)
    loss_fn = SegLoss(cfg.loss.class_weights, cfg.loss.ce_weight, cfg.loss.dice_weight, cfg.loss.focal_gamma,
                      cfg.loss.dice_classes).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None) \
        if distributed else model

    t_cfg = cfg.train
    freeze_bn = t_cfg.freeze_bn and parent.kind != "scratch"  # a network from scratch has no statistics yet
    real_src = RealSource(split.train, t_cfg.crop_px, cfg.real.max_side_px, cfg.real.defect_image_share)
    source = MixedSource(real_src, build_synth_source(cfg), cfg.synth.ratio)
    stream = CropStream(source, crop_px=t_cfg.crop_px, in_chans=in_chans, defect_bias=t_cfg.defect_bias,
                        crops_per_part=t_cfg.crops_per_part, augment=t_cfg.augment, seed=cfg.seed, rank=rank)
    loader = DataLoader(stream, batch_size=t_cfg.batch_size, num_workers=t_cfg.workers,
                        persistent_workers=t_cfg.workers > 0)
    es = cfg.early_stop
    val_set = split.val
    if es.max_val_images and len(val_set) > es.max_val_images:
        from magspect.training.realdata import Subset

        val_set = Subset(split.val, list(range(es.max_val_images)))

    def validate() -> dict[str, Any]:
        was = model.training
        model.eval()
        with torch.no_grad():
            r = evaluate_real(TorchSegmenter(model, in_chans, device), val_set, cfg.eval.min_defect_px)
        model.train(was)
        if freeze_bn:
            freeze_batchnorm(model)
        return r

    history: list[dict[str, Any]] = []
    best_score, best_step, best_state, since_best = -math.inf, 0, None, 0
    if is_main:
        r0 = validate()
        best_score = float(r0[es.metric]) if r0[es.metric] is not None and np.isfinite(r0[es.metric]) else -math.inf
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        history.append({"step": 0, **{k: r0[k] for k in ("image_auroc", "mean_iou", "escape_rate")}})
        say(f"step 0 (parent): image AUROC {r0['image_auroc']:.3f}, mean IoU {r0['mean_iou']:.3f}, "
            f"escape rate {r0['escape_rate'] if r0['escape_rate'] is not None else float('nan'):.3f}")
    model.train()
    if freeze_bn:
        freeze_batchnorm(model)
    budget_s = t_cfg.time_budget_min * 60 if t_cfg.time_budget_min else None
    t0 = time.perf_counter()
    step, stop, stopped_early, losses = 0, False, False, []
    it = iter(loader)
    while not stop:
        progress = step / t_cfg.steps
        if budget_s:
            progress = max(progress, (time.perf_counter() - t0) / budget_s)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, step, progress)
        x, y = next(it)
        x, y = x.to(device), y.to(device)
        loss = loss_fn(ddp(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if t_cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t_cfg.grad_clip)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        out_of_time = budget_s is not None and time.perf_counter() - t0 >= budget_s
        flag = 1 if (step >= t_cfg.steps or out_of_time) else 0
        if is_main and (step % es.every_steps == 0 or flag):
            r = validate()
            score = r[es.metric]
            score = float(score) if score is not None and np.isfinite(score) else -math.inf
            rec = {"step": step, "loss": float(np.mean(losses[-es.every_steps:])),
                   **{k: r[k] for k in ("image_auroc", "mean_iou", "escape_rate", "false_reject_rate")},
                   "iou_per_class": r["iou_per_class"], "elapsed_s": time.perf_counter() - t0}
            history.append(rec)
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            if score > best_score + es.min_delta:
                best_score, best_step, since_best = score, step, 0
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            else:
                since_best += 1
            say(f"step {step}: loss {rec['loss']:.4f}, image AUROC {r['image_auroc']:.3f}, mean IoU "
                f"{r['mean_iou']:.3f}{' (best)' if best_step == step else ''}")
            if since_best >= es.patience and step >= es.min_steps and not flag:
                flag, stopped_early = 2, True
                say(f"early stop: no {es.metric} gain over {es.min_delta} in {es.patience} validations")
        if distributed:
            t = torch.tensor([flag], dtype=torch.int64)
            dist.broadcast(t, 0)
            flag = int(t)
        stop = flag > 0
    train_s = time.perf_counter() - t0
    summary: dict[str, Any] = {}
    if is_main:
        model.load_state_dict(best_state)
        ckpt = {
            "model": model.state_dict(),
            "step": best_step,
            "model_name": parent.info["model_name"],
            "model_kwargs": parent.info.get("model_kwargs") or {},
            "in_chans": in_chans,
            "model_cfg": model.cfg.to_dict(),
            "bit_depth": parent.info.get("bit_depth") or 8,
            "um_per_px": parent.info.get("um_per_px"),
            "um_per_px_range": parent.info.get("um_per_px_range"),
            "config": json.loads(cfg.model_dump_json()),
            "config_sha256": cfg.sha256(),
            "git_commit": git_commit(),
        }
        best_rec = next((h for h in history if h["step"] == best_step), history[0])
        ckpt["val_metrics"] = {f"real_{k}": float(best_rec[k]) for k in ("image_auroc", "mean_iou")
                               if best_rec.get(k) is not None}
        save_checkpoint(out_dir / "best.pt", **ckpt)
        lineage = {
            "parent": parent.lineage(),
            "data": {
                "real": {"kind": cfg.real.kind, "path": str(cfg.real.path),
                         "class_map": str(cfg.real.class_map) if cfg.real.class_map else None,
                         "class_map_sha256": _sha_or_none(cfg.real.class_map),
                         "val_fraction": cfg.real.val_fraction, "split_salt": cfg.real.split_salt,
                         "image_root": str(cfg.real.image_root) if cfg.real.image_root else None,
                         **split.as_dict()},
                "synth": {"ratio": cfg.synth.ratio, "folder": str(cfg.synth.folder) if cfg.synth.folder else None,
                          "source": cfg.synth.source.model_dump() if cfg.synth.folder is None else None},
            },
            "config": json.loads(cfg.model_dump_json()),
            "config_sha256": cfg.sha256(),
            "git_commit": ckpt["git_commit"],
            "training": {"steps": step, "best_step": best_step, "stopped_early": stopped_early,
                         "train_s": train_s, "world_size": dist.get_world_size() if distributed else 1,
                         "device": str(device)},
        }
        summary = {"steps": step, "best_step": best_step, "stopped_early": stopped_early, "train_s": train_s,
                   "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:])), "history": history,
                   "split": split.as_dict(), "suite_key": real_suite_key(split), "checkpoint": str(out_dir / "best.pt")}
        (out_dir / "lineage.json").write_text(json.dumps(lineage, indent=2, default=str))
        if cfg.export.enabled:
            summary.update(_export_and_register(cfg, ckpt, split, lineage, out_dir, say))
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary


def _sha_or_none(path: Path | None) -> str | None:
    from magspect.training.realdata import content_sha256

    return content_sha256(path) if path is not None and Path(path).is_file() else None


def _export_and_register(cfg: RetrainConfig, ckpt: dict, split: Split, lineage: dict, out_dir: Path,
                         say) -> dict[str, Any]:  # noqa: ANN001
    from magspect.inspect.backend import Segmenter
    from magspect.training.data import to_unit_float
    from magspect.training.export import _pad_to

    mult = ckpt["model_cfg"]["input_multiple"]
    parity = []
    for i in range(min(4, len(split.val))):
        image, _ = split.val.load(i)
        x = to_unit_float(image, ckpt["in_chans"]).transpose(2, 0, 1)[None]
        parity.append(np.ascontiguousarray(_pad_to(x, mult), dtype=np.float32))
    onnx_path = out_dir / "model.onnx"
    _, manifest, par = _export_checked(ckpt, onnx_path, parity, cfg.export)
    say(f"exported {onnx_path}: parity max |logit diff| {par.max_abs_diff:.2e}, argmax agreement "
        f"{100 * par.argmax_agreement:.4f} %")
    int8_path = None
    if cfg.export.int8:
        from magspect.training.quantize import int8_from_fp32

        int8_path = out_dir / "model-int8.onnx"
        views = []
        for i, x in enumerate(parity):
            _, m = split.val.load(i)
            ph, pw = x.shape[2] - m.shape[0], x.shape[3] - m.shape[1]
            views.append((x, np.pad(m, ((0, ph), (0, pw)))))
        # calibrated on the real validation images; reported, not gated (the registry keeps both files)
        int8_from_fp32(onnx_path, int8_path, manifest, parity, views, min_agreement=0.0)
    seg = Segmenter(onnx_path, threads=cfg.num_threads or None, warmup=False)
    metrics: dict[str, Any] = {}
    key = real_suite_key(split)
    metrics[key] = {**evaluate_real(seg, split.val, cfg.eval.min_defect_px), "data": str(cfg.real.path)}
    m = metrics[key]
    say(f"ONNX on the real validation split ({m['n_images']} images, {m['n_defective']} defective): image AUROC "
        f"{m['image_auroc']:.3f}, mean IoU {m['mean_iou']:.3f}, escape rate {m['escape_rate']}")
    if cfg.eval.magsynth_n:
        metrics.update(evaluate_magsynth(onnx_path, cfg.eval.magsynth_n))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str))
    result: dict[str, Any] = {"onnx": str(onnx_path), "metrics": metrics}
    if cfg.registry.enabled:
        from magspect.models.registry import ModelRegistry

        reg = ModelRegistry(cfg.registry.path)
        mv = reg.register(onnx_path, metrics=metrics, lineage=lineage, notes=cfg.registry.notes,
                          int8_path=int8_path)
        result["registry_version"] = mv.version
        result["registry"] = str(reg.root)
        say(f"registered as {mv.version} in {reg.root} (not promoted; see `magspect models compare/promote`)")
    return result


def _export_checked(ckpt: dict, out: Path, inputs: list[np.ndarray], ex: ExportSection):  # noqa: ANN202
    """:func:`~magspect.training.export.export_checkpoint` with the parity limits of ``ex``."""
    from magspect.training.export import export_checkpoint

    return export_checkpoint(ckpt, out, inputs, max_abs_diff=ex.max_abs_logit_diff,
                             min_agreement=ex.min_argmax_agreement)


def magsynth_suite_key(n: int) -> str:
    from magspect.inspect.evaluate import suite_key

    return suite_key(n)


def evaluate_magsynth(onnx_path: str | Path, n: int) -> dict[str, dict[str, Any]]:
    """The first ``n`` magsynth-v2 test parts through the whole Inspector (escape rate etc.)."""
    from magspect.inspect.evaluate import evaluate_suite_subset

    return evaluate_suite_subset(onnx_path, n)
