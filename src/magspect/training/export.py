"""Export a checkpoint to one self-contained ONNX file with its manifest, and check parity.

Recipe (see the stack notes): ``torch.onnx.export(..., dynamo=True, opset_version=18,
external_data=False)`` with dynamic batch, height and width (H, W multiples of 32); the manifest is
embedded as metadata ``magspect.manifest`` and written beside the file. Every export runs
:func:`check_parity` and raises :class:`ParityError` when onnxruntime and PyTorch disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from magspect.inspect.backend import sha256_file
from magspect.models.manifest import (
    METADATA_KEY,
    Manifest,
    Preprocess,
    full_resolution_logits,
    manifest_path_for,
)
from magspect.models.onnx_meta import embed_metadata
from magspect.training.quantize import CALIB_PERCENTILE

OPSET = 18
MAX_ABS_LOGIT_DIFF = 1e-4
MIN_ARGMAX_AGREEMENT = 0.9999


class ExportError(RuntimeError):
    """The export cannot be trusted (parity or INT8 agreement below its limit).

    ``report`` holds what was measured when the failure came after the FP32 export."""

    report: ExportReport | None = None


class ParityError(ExportError):
    """onnxruntime's output does not match PyTorch's closely enough."""


@dataclass(frozen=True)
class Parity:
    """``max_abs_diff``: onnxruntime against PyTorch computing in float64 (the exact function the
    checkpoint defines, up to 1e-12): the error of the exported graph alone. ``fp32_max_abs_diff``:
    against PyTorch in float32, which carries its own rounding error of the same size (logits
    reach ±40 here, so two float32 implementations each within 5e-5 of exact can be 1e-4 apart)."""

    max_abs_diff: float
    argmax_agreement: float
    n_pixels: int
    fp32_max_abs_diff: float | None = None

    def as_dict(self) -> dict[str, float]:
        out = {
            "ort_vs_torch_max_abs_logit_diff": self.max_abs_diff,
            "ort_vs_torch_argmax_agreement": self.argmax_agreement,
        }
        if self.fp32_max_abs_diff is not None:
            out["ort_vs_torch_fp32_max_abs_logit_diff"] = self.fp32_max_abs_diff
        return out


def ort_session(path: str | Path, threads: int = 2):  # noqa: ANN201
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def export_onnx(model: torch.nn.Module, path: str | Path, in_chans: int, max_side_px: int = 8192) -> Path:
    """Plain ONNX export (no manifest): input ``image``, output ``logits``, dynamic N, H, W."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    if hasattr(model, "for_inference"):  # the same function in a faster graph (BatchNorm folded, splits)
        model = model.for_inference()
    mult = getattr(getattr(model, "cfg", None), "input_multiple", 32)
    batch = torch.export.Dim("batch", min=1, max=256)
    hb = torch.export.Dim("h_blocks", min=1, max=max_side_px // mult)
    wb = torch.export.Dim("w_blocks", min=1, max=max_side_px // mult)
    example = torch.rand(2, in_chans, 2 * mult, 3 * mult)

    class _Named(torch.nn.Module):  # names the graph input ``image``
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.net(image)

    torch.onnx.export(
        _Named(model).eval(),
        (example,),
        str(path),
        dynamo=True,
        opset_version=OPSET,
        external_data=False,
        input_names=["image"],
        output_names=["logits"],
        dynamic_shapes={"image": {0: batch, 2: mult * hb, 3: mult * wb}},
        verbose=False,
    )
    proto = onnx.load(str(path))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != OPSET:
        raise RuntimeError(f"exported opset {opset}, expected {OPSET}")
    if [i.name for i in proto.graph.input] != ["image"] or [o.name for o in proto.graph.output] != ["logits"]:
        raise RuntimeError(f"unexpected graph I/O names {[i.name for i in proto.graph.input]}")
    for extra in path.parent.glob(path.name + ".data"):
        raise RuntimeError(f"export wrote external data {extra}; expected one self-contained file")
    return path


def embed_manifest(path: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest`` into the ONNX metadata and beside the file as ``<name>.manifest.json``."""
    path = embed_metadata(path, METADATA_KEY, manifest.to_json(indent=None))
    manifest.write(manifest_path_for(path))
    return path


def exported_output_stride(model: torch.nn.Module) -> int:
    """The stride of the logits in ``model``'s ONNX export (:attr:`Manifest.output_stride`)."""
    return int(getattr(model.for_inference(), "output_stride", 1)) if hasattr(model, "for_inference") else 1


def check_parity(
    model: torch.nn.Module,
    onnx_path: str | Path,
    inputs: list[np.ndarray],
    max_abs_diff: float = MAX_ABS_LOGIT_DIFF,
    min_agreement: float = MIN_ARGMAX_AGREEMENT,
    output_stride: int = 1,
) -> Parity:
    """Run each ``1 x C x H x W`` input through PyTorch (float64 and float32) and onnxruntime;
    raise if onnxruntime's logits are further than ``max_abs_diff`` from the float64 ones, or its
    argmax agrees with float32 PyTorch's on fewer than ``min_agreement`` of the pixels.
    ``output_stride``: the export's (:attr:`Manifest.output_stride`); its logits are brought to full
    size as the runtime does (:func:`full_resolution_logits`), so the check covers that step too."""
    import copy

    sess = ort_session(onnx_path)
    model = model.eval().cpu()
    exact = copy.deepcopy(model).double()
    worst, worst32, agree, total = 0.0, 0.0, 0, 0
    with torch.no_grad():
        for x in inputs:
            ref32 = model(torch.from_numpy(x)).numpy()
            ref = exact(torch.from_numpy(x).double()).numpy()
            got = full_resolution_logits(sess.run(["logits"], {"image": x})[0], output_stride)
            if got.shape != ref.shape:
                raise ParityError(f"ORT output shape {got.shape} != PyTorch {ref.shape} for input {x.shape}")
            worst = max(worst, float(np.abs(got - ref).max()))
            worst32 = max(worst32, float(np.abs(got - ref32).max()))
            agree += int((got.argmax(1) == ref32.argmax(1)).sum())
            total += ref.shape[0] * ref.shape[2] * ref.shape[3]
    parity = Parity(worst, agree / max(total, 1), total, worst32)
    if parity.max_abs_diff > max_abs_diff or parity.argmax_agreement < min_agreement:
        raise ParityError(
            f"ONNX parity check FAILED for {onnx_path}: max |logit diff| {parity.max_abs_diff:.3g} "
            f"(limit {max_abs_diff:g}), argmax agreement {parity.argmax_agreement:.6f} (limit {min_agreement})"
        )
    return parity


def manifest_from_checkpoint(ckpt: dict[str, Any], **fields: Any) -> Manifest:
    from magspect import __version__

    mcfg = dict(ckpt["model_cfg"])
    # The inference tile is a run-time recommendation, not a training fact: take today's registry
    # default, so a checkpoint trained before it changed still exports the current advice.
    try:
        from magspect.models import default_cfg

        cur = default_cfg(ckpt["model_name"])
        mcfg["tile_size_px"], mcfg["tile_overlap_px"] = cur.tile_size_px, cur.tile_overlap_px
    except KeyError:
        pass
    in_chans = ckpt["in_chans"]
    pre = Preprocess(
        bit_depth=ckpt.get("bit_depth", 8),
        color="gray" if in_chans == 1 else "rgb",
        mean=tuple(mcfg["mean"]),
        std=tuple(mcfg["std"]),
    )
    base: dict[str, Any] = {
        "model_name": ckpt["model_name"],
        "model_kwargs": ckpt.get("model_kwargs", {}),
        "in_channels": in_chans,
        "preprocess": pre,
        "input_multiple": mcfg["input_multiple"],
        "tile_size_px": mcfg["tile_size_px"],
        "tile_overlap_px": mcfg["tile_overlap_px"],
        "um_per_px": ckpt.get("um_per_px"),
        "um_per_px_range": ckpt.get("um_per_px_range"),
        "opset": OPSET,
        "training_config_sha256": ckpt.get("config_sha256"),
        "git_commit": ckpt.get("git_commit"),
        "validation_metrics": {k: float(v) for k, v in (ckpt.get("val_metrics") or {}).items() if np.isfinite(v)},
        "magspect_version": __version__,
    }
    base.update(fields)
    return Manifest(**base)


def export_checkpoint(
    ckpt: dict[str, Any],
    out: str | Path,
    parity_inputs: list[np.ndarray],
    check_sizes_hw: tuple[tuple[int, int], ...] = ((64, 96), (128, 128)),
    max_abs_diff: float = MAX_ABS_LOGIT_DIFF,
    min_agreement: float = MIN_ARGMAX_AGREEMENT,
) -> tuple[Path, Manifest, Parity]:
    """Checkpoint -> ``out`` (FP32 ONNX + manifest), parity-checked on ``parity_inputs`` and on
    random inputs of ``check_sizes_hw`` with batch 2 (the dynamic axes), within ``max_abs_diff``
    and ``min_agreement``. A file that fails the check is deleted: nobody ships a model whose
    parity failed."""
    from magspect.training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    out = export_onnx(model, out, ckpt["in_chans"])
    stride = exported_output_stride(model)
    float_sha = sha256_file(out)
    rng = np.random.default_rng(0)
    shape_probes = [rng.random((2, ckpt["in_chans"], h, w), dtype=np.float32) for h, w in check_sizes_hw]
    try:
        parity = check_parity(model, out, list(parity_inputs) + shape_probes, max_abs_diff, min_agreement, stride)
    except ParityError:
        out.unlink(missing_ok=True)
        raise
    manifest = manifest_from_checkpoint(ckpt, float_model_sha256=float_sha, parity=parity.as_dict(),
                                        output_stride=stride)
    embed_manifest(out, manifest)
    return out, manifest, parity


@dataclass
class ExportReport:
    fp32_path: Path
    manifest: Manifest
    parity: Parity
    int8_path: Path | None = None
    int8: dict[str, float] | None = None
    sizes_checked_hw: tuple[tuple[int, int], ...] = ()

    def lines(self) -> list[str]:
        out = [
            f"wrote {self.fp32_path} ({self.fp32_path.stat().st_size / 1e6:.1f} MB, opset {self.manifest.opset}) "
            f"and {manifest_path_for(self.fp32_path).name}",
            f"parity ORT vs PyTorch (float64): max |logit diff| {self.parity.max_abs_diff:.2e} "
            f"(limit {MAX_ABS_LOGIT_DIFF:g}; vs float32 PyTorch {self.parity.fp32_max_abs_diff or 0:.2e}), "
            f"argmax agreement {100 * self.parity.argmax_agreement:.4f} % on {self.parity.n_pixels} px; "
            f"sizes checked {', '.join(f'{h}x{w}' for h, w in self.sizes_checked_hw)}",
        ]
        if self.int8_path is not None and self.int8 is not None:
            r = self.int8
            out.append(
                f"wrote {self.int8_path} ({self.int8_path.stat().st_size / 1e6:.1f} MB): INT8 vs FP32 argmax agreement "
                f"{100 * r['int8_vs_fp32_argmax_agreement']:.3f} % (defect or not: "
                f"{100 * r['int8_vs_fp32_defect_agreement']:.3f} %), defect instance recall "
                f"{r['defect_recall_fp32']:.3f} (FP32) -> {r['defect_recall_int8']:.3f} (INT8), "
                f"lost {100 * r['defect_recall_lost']:.2f} points over {int(r['n_truth_instances'])} instances"
                + (f"; calibrated on {int(r['int8_calib_inputs'])} crops at the {r['int8_calib_percentile']:g}th "
                   "percentile" if "int8_calib_percentile" in r else "")
            )
        return out


def _pad_to(x: np.ndarray, multiple: int) -> np.ndarray:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    return x


def _pad_mask(m: np.ndarray, multiple: int) -> np.ndarray:
    ph, pw = (-m.shape[0]) % multiple, (-m.shape[1]) % multiple
    return np.pad(m, ((0, ph), (0, pw))) if ph or pw else m


def export_from_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    *,
    int8: bool = False,
    parity_views: int = 4,
    calib_views: int = 32,
    min_int8_agreement: float = 0.99,
    int8_views: int = 32,
    int8_percentile: float = CALIB_PERCENTILE,
    log=print,  # noqa: ANN001
) -> ExportReport:
    """The ``magspect export`` pipeline: FP32 export + parity on ``parity_views`` validation views,
    optional INT8 calibrated on synthetic training views and compared with FP32 on ``int8_views``
    validation views (at least the parity ones: enough defect instances for its recall figure);
    ``int8_percentile``: where the calibration cuts each activation's range."""
    from magspect.training.checkpoint import load_checkpoint
    from magspect.training.config import TrainConfig
    from magspect.training.data import to_unit_float
    from magspect.training.validate import load_val_views

    ckpt = load_checkpoint(checkpoint)
    cfg = TrainConfig.model_validate(ckpt["config"])
    in_chans, mult = ckpt["in_chans"], ckpt["model_cfg"]["input_multiple"]
    n_views = max(parity_views, int8_views) if int8 else parity_views
    cfg_val = cfg.model_copy(update={"val": cfg.val.model_copy(update={"n_parts": n_views})})
    log(f"loading {n_views} validation views ({cfg.val.source}) for the parity check"
        + (" and the INT8 comparison" if int8 else ""))
    views = load_val_views(cfg_val) if cfg.val.source != "none" else []
    inputs = [_pad_to(to_unit_float(im, in_chans).transpose(2, 0, 1)[None], mult) for im, _ in views[:parity_views]]
    inputs = [np.ascontiguousarray(x, dtype=np.float32) for x in inputs]
    sizes = ((64, 96), (128, 128))
    out, manifest, parity = export_checkpoint(ckpt, out, inputs, check_sizes_hw=sizes)
    all_sizes = tuple(dict.fromkeys([*sizes, *(tuple(x.shape[-2:]) for x in inputs)]))
    report = ExportReport(Path(out), manifest, parity, sizes_checked_hw=all_sizes)
    if not int8:
        return report

    from magspect.training.quantize import calibration_inputs, comparison_views, int8_from_fp32

    log(f"calibrating INT8 on {calib_views} synthetic training views")
    calib = calibration_inputs(cfg, calib_views, in_chans)
    int8_path = Path(out).with_name(Path(out).stem + "-int8.onnx")
    try:
        report.int8 = int8_from_fp32(out, int8_path, manifest, calib, comparison_views(views, in_chans, mult),
                                     percentile=int8_percentile, min_agreement=min_int8_agreement)
        report.int8_path = int8_path
    except ExportError as err:
        if getattr(err, "int8", None) is not None:
            report.int8_path, report.int8 = int8_path, err.int8
        err.report = report
        raise
    return report
