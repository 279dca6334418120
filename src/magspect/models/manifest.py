"""The model manifest: everything a runtime needs to feed an exported model, torch-free.

It is embedded in the ONNX file's metadata (key :data:`METADATA_KEY`, value JSON) and written
beside it as ``<name>.manifest.json``. The runtime reads preprocessing from here and never guesses:

* input ``image``: ``N x C x H x W`` float32, the raw pixel values divided by
  :attr:`Preprocess.input_divisor_by_dtype` (``uint8`` -> 255, ``uint16`` -> 65535), so in [0, 1];
  ``C`` is :attr:`Manifest.in_channels` (1 grayscale, 3 RGB in R, G, B order); H and W multiples of
  :attr:`Manifest.input_multiple`. Mean/std normalisation happens inside the graph.
* output ``logits``: ``N x len(classes) x H/s x W/s`` float32, unnormalised class scores (softmax over
  axis 1 for probabilities; argmax for the class mask, ids as in :data:`magspect.types.CLASS_NAMES`),
  where ``s`` is :attr:`Manifest.output_stride`. With ``s > 1`` the runtime brings them to the
  input's size with :func:`full_resolution_logits` (bilinear, half-pixel centres: what the network's
  own last layer does in PyTorch, moved out of the graph: onnxruntime's CPU resize at full
  resolution was slower than OpenCV's; BENCHMARKS.md, "Defect model").

Reading it needs only onnxruntime (no ``onnx`` package): :meth:`Manifest.from_onnx`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from magspect.types import CLASS_NAMES

METADATA_KEY = "magspect.manifest"
MANIFEST_FORMAT = 1


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Frozen):
    name: str
    layout: str  # e.g. "NCHW"
    dtype: Literal["float32"] = "float32"
    description: str = ""


class Preprocess(_Frozen):
    """How raw pixels become the ``image`` input. Mean/std are applied inside the graph."""

    bit_depth: Literal[8, 16]  # bit depth of the images the model was trained on
    input_divisor_by_dtype: dict[str, float] = Field(default_factory=lambda: {"uint8": 255.0, "uint16": 65535.0})
    value_range: tuple[float, float] = (0.0, 1.0)
    color: Literal["gray", "rgb"]
    mean: tuple[float, ...]  # documentation only: applied in the graph after scaling
    std: tuple[float, ...]
    normalisation_in_graph: bool = True

    def divisor_for(self, dtype_name: str) -> float:
        """The divisor for a raw image of numpy dtype name ``dtype_name`` (``"uint8"``, ``"uint16"``)."""
        try:
            return self.input_divisor_by_dtype[dtype_name]
        except KeyError:
            raise ValueError(
                f"no input scaling for dtype {dtype_name!r}; the manifest knows {sorted(self.input_divisor_by_dtype)}"
            ) from None


class Manifest(_Frozen):
    format: int = MANIFEST_FORMAT
    model_name: str  # registry name, e.g. "unet_mnv3s"
    model_kwargs: dict = Field(default_factory=dict)
    precision: Literal["fp32", "int8"] = "fp32"
    classes: tuple[str, ...] = CLASS_NAMES
    in_channels: Literal[1, 3]
    preprocess: Preprocess
    input: TensorSpec = TensorSpec(
        name="image", layout="NCHW", description="raw pixels / input divisor, in [0, 1]; dynamic N, H, W"
    )
    output: TensorSpec = TensorSpec(
        name="logits", layout="NCHW", description="class logits, C = len(classes); argmax over axis 1"
    )
    input_multiple: int = Field(32, ge=1)  # H and W must be multiples of this
    # the logits come out at 1/output_stride of the input's size: see full_resolution_logits
    output_stride: Literal[1, 2] = 1
    tile_size_px: int = Field(512, ge=1)  # recommended inference tile (square)
    tile_overlap_px: int = Field(32, ge=0)
    um_per_px: float | None = Field(None, gt=0)  # resolution the model was trained for (one scale)
    um_per_px_range: tuple[float, float] | None = None  # or the range of scales in its training data
    opset: int = 18
    training_config_sha256: str | None = None
    git_commit: str | None = None
    validation_metrics: dict[str, float] = Field(default_factory=dict)
    float_model_sha256: str | None = None  # sha256 of the FP32 ONNX file before this manifest was embedded
    parity: dict[str, float] = Field(default_factory=dict)  # export checks (ORT vs torch, INT8 vs FP32)
    # operating point: a pixel counts as a defect only where its class's softmax probability reaches
    # this (chosen on validation parts, recorded with how); 0 = plain argmax
    defect_threshold: float = Field(0.0, ge=0.0, lt=1.0)
    # how well this model sizes what it finds: per defect class, the expanded uncertainty (px of the
    # view) of the lengths it reports, measured on validation parts with known truth (``magspect
    # calibrate-sizing``: |median error| + 2 robust sigma). The gate's decision band around a length
    # limit is the larger of this and the spec's ``decision.defect_uncertainty_px``.
    defect_length_uncertainty_px: dict[str, float] = Field(default_factory=dict)
    magspect_version: str | None = None
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if len(self.preprocess.mean) != self.in_channels or len(self.preprocess.std) != self.in_channels:
            raise ValueError("mean/std need one value per input channel")
        if (self.in_channels == 3) != (self.preprocess.color == "rgb"):
            raise ValueError("color 'rgb' goes with 3 input channels, 'gray' with 1")
        if self.tile_size_px % self.input_multiple:
            raise ValueError("tile_size_px must be a multiple of input_multiple")
        bad = {c: u for c, u in self.defect_length_uncertainty_px.items() if c not in self.classes or not u >= 0}
        if bad:
            raise ValueError(f"defect_length_uncertainty_px: unknown class or negative value in {bad}")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        return cls.model_validate(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> Manifest:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_onnx(cls, path: str | Path) -> Manifest:
        """Read the manifest embedded in an ONNX file (onnxruntime only)."""
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return cls.from_session(sess, source=str(path))

    @classmethod
    def from_session(cls, session, source: str = "<session>") -> Manifest:  # noqa: ANN001
        """Read the manifest from an open ``onnxruntime.InferenceSession``."""
        meta = session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ValueError(f"{source}: no {METADATA_KEY!r} metadata; not a magspect model export")
        return cls.from_json(meta[METADATA_KEY])

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n", encoding="utf-8")
        return path


def full_resolution_logits(logits: np.ndarray, stride: int) -> np.ndarray:
    """``N x C x h x w`` logits at 1/``stride`` of the input -> ``N x C x (h*stride) x (w*stride)``:
    bilinear with half-pixel centres and clamped borders (PyTorch's ``interpolate(...,
    mode="bilinear", align_corners=False)``, OpenCV's ``INTER_LINEAR``). ``stride`` 1: unchanged."""
    if stride == 1:
        return logits
    import cv2

    n, c, h, w = logits.shape
    out = np.empty((n, c, h * stride, w * stride), np.float32)
    for i in range(n):
        for j in range(c):
            cv2.resize(logits[i, j], (w * stride, h * stride), dst=out[i, j], interpolation=cv2.INTER_LINEAR)
    return out


def manifest_path_for(onnx_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.manifest.json``."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".manifest.json")
