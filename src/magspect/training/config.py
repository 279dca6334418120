"""Training configuration: one YAML file, validated by pydantic (``magspect train --config FILE``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSection(_Cfg):
    name: str = "unet_mnv3s"
    in_chans: Literal[1, 3] = 1
    kwargs: dict[str, Any] = Field(default_factory=dict)
    # fine-tune: start from these weights (same architecture) with a fresh optimiser and schedule;
    # ignored when resuming (the run's own last.pt wins). A training checkpoint (.pt), an ONNX export
    # (.onnx, FP32; its BatchNorms come folded, so they stay frozen: optim.freeze_bn), "bundled" (the
    # default model's FP32 export) or "registry:VERSION".
    init_from: Path | None = None

    def init_from_export(self) -> bool:
        """Does ``init_from`` name an ONNX export (weights recovered from the file, BatchNorm folded)?"""
        ref = str(self.init_from) if self.init_from is not None else ""
        return ref == "bundled" or ref.startswith("registry:") or ref.endswith(".onnx")


class SynthSource(_Cfg):
    """Parts drawn from the generator, one seed per part."""

    specs: list[str] = Field(default_factory=lambda: ["def-blk-20x10x5-nicuni"])
    views: list[Literal["top", "side"]] = Field(default_factory=lambda: ["top"])
    seed: int = 0  # parts use seeds seed, seed+1, ... (streamed: seeds drawn from an rng seeded here)
    n_parts: int | None = None  # None: endless stream; else a fixed pool (seeds seed..seed+n_parts-1)
    synth: dict[str, Any] = Field(default_factory=dict)  # SynthConfig keyword arguments


class DataSection(_Cfg):
    source: Literal["synth", "folder", "coco"] = "synth"
    synth: SynthSource = Field(default_factory=SynthSource)
    folder: Path | None = None  # folder of images + masks (see training.data.FolderSource)
    coco: Path | None = None  # COCO annotations.json (images relative to its folder)
    cache_dir: Path | None = None  # synth with n_parts: render once to this folder, then read from disk
    bit_depth: Literal[8, 16] = 8  # of the training images; recorded in the manifest
    um_per_px: float | None = None  # resolution trained for; recorded in the manifest
    crop_px: int = Field(256, ge=32)
    defect_bias: float = Field(0.7, ge=0, le=1)  # share of crops centred on a defect pixel
    # share centred on a hard negative: a nuisance the generator recorded (dust, lint, water spot,
    # fingerprint, glint) or a corner of the part's outline (chamfers look like chips)
    hard_bias: float = Field(0.0, ge=0, le=1)
    # defect crops: draw a class first with these weights (e.g. {crack: 2, chip: 1, coating_flaw: 1.5});
    # None: every instance equally likely whatever its class
    defect_class_weights: dict[Literal["crack", "chip", "coating_flaw"], float] | None = None
    # hard-negative crops: draw a kind first with these weights (lint, dust, water_spot, fingerprint,
    # glint, outline: the part's corners; a kind not named weighs 1); None: every kind equally likely
    hard_kind_weights: dict[str, float] | None = None
    crops_per_part: int = Field(8, ge=1)  # crops cut per part drawn (on average)
    pool_size: int = Field(16, ge=1)  # parts held at once; each crop from a random one (iid batches)
    augment: bool = True
    workers: int = Field(0, ge=0)


class ValSection(_Cfg):
    source: Literal["magsynth_v1", "magsynth_v2", "magsynth_v3", "synth", "folder", "none"] = "magsynth_v1"
    n_parts: int = Field(16, ge=1)  # first n validation parts of the split
    synth: SynthSource | None = None  # for source: synth
    folder: Path | None = None
    every_steps: int = Field(200, ge=1)
    min_instance_area_px: int = Field(4, ge=1)  # predicted blobs smaller than this are ignored


class LossSection(_Cfg):
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    focal_gamma: float = 0.0  # > 0: focal loss instead of plain cross entropy
    class_weights: list[float] | None = Field(default_factory=lambda: [0.5, 0.5, 3.0, 2.0, 2.0])
    dice_classes: list[int] = Field(default_factory=lambda: [2, 3, 4])


class OptimSection(_Cfg):
    steps: int = Field(1000, ge=1)
    batch_size: int = Field(8, ge=1)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    # Wall-clock budget: the cosine schedule follows max(step / steps, elapsed / budget) and the
    # run ends when either reaches 1, so a slow or shared machine still ends on an annealed model.
    time_budget_min: float | None = Field(None, gt=0)
    grad_clip: float | None = 5.0
    # BatchNorm statistics kept as loaded (eval mode) while the rest trains; None: only when
    # model.init_from is an ONNX export (its folded statistics are not batch statistics)
    freeze_bn: bool | None = None


class TrainConfig(_Cfg):
    out_dir: Path = Path("runs/train")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_threads: int | None = 2  # torch intra-op threads per process (CPU)
    log_every: int = Field(10, ge=1)
    ckpt_every: int = Field(200, ge=1)
    keep_checkpoints: bool = False  # also keep a copy of each periodic checkpoint (step-NNNNNN.pt)
    progress: bool = True
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    val: ValSection = Field(default_factory=ValSection)
    loss: LossSection = Field(default_factory=LossSection)
    optim: OptimSection = Field(default_factory=OptimSection)

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.data.crop_px % 32:
            raise ValueError("data.crop_px must be a multiple of 32")
        if self.data.defect_bias + self.data.hard_bias > 1:
            raise ValueError("data.defect_bias + data.hard_bias must be <= 1 (they are shares of the crops)")
        if self.data.source == "folder" and self.data.folder is None:
            raise ValueError("data.source 'folder' needs data.folder")
        if self.data.source == "coco" and self.data.coco is None:
            raise ValueError("data.source 'coco' needs data.coco")
        for name in ("defect_class_weights", "hard_kind_weights"):
            w = getattr(self.data, name) or {}
            if any(v < 0 for v in w.values()) or (w and not any(v > 0 for v in w.values())):
                raise ValueError(f"data.{name} must be >= 0 with at least one > 0, got {w}")
        if self.loss.class_weights is not None and len(self.loss.class_weights) != 5:
            raise ValueError("loss.class_weights needs one weight per class (5)")
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(data)

    def bn_frozen(self) -> bool:
        return self.optim.freeze_bn if self.optim.freeze_bn is not None else self.model.init_from_export()

    def sha256(self) -> str:
        """Hash of the recipe (everything but where it writes and how it shows progress)."""
        d = json.loads(self.model_dump_json(exclude={"out_dir", "progress"}))
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
