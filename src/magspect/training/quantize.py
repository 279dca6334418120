"""INT8 static quantisation (QDQ, per-channel weights) calibrated on synthetic images.

``quant_pre_process`` (shape inference and graph optimisation) then ``quantize_static``. The
report compares the INT8 model with the FP32 one on held-out images: argmax agreement, agreement on
"defect or not" (what the gate acts on), and how many defect instances the FP32 model finds that
the INT8 model loses.

Recipe (chosen on MobileNetV3 U-Nets, magsynth-v2 validation views, see BENCHMARKS.md "Defect
model"): only the encoder's convolutions are quantised (hard-sigmoid/SE multiplications, additions,
resizes and the whole decoder stay FP32), activation ranges from the 99.9th percentile of the
calibration histogram instead of min/max, and the depthwise convolutions stay FP32
(:func:`sensitive_nodes`). On the bundled model: 79.6 % argmax agreement for every op with min/max,
95.1 % for convolutions at the 99.9th percentile, 99.9 % with the depthwise ones kept in FP32
(``benchmarks/bench_int8_recipes.py``). With the decoder in FP32 (eighth session) the runtime lost
6 of 408 rejectable defects to INT8 on 600 test and validation parts (the decoder quantised too: 7),
sized cracks as FP32 does, and ran 1.15x faster (BENCHMARKS.md, "Defect model"); on all 1,000 test
parts it loses 4 of 603 (0.66 points). A cut at the 99.99th percentile did no better through the
runtime (thirteenth session), so the 99.9th stays the default.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from magspect.training.metrics import SegMetrics
from magspect.types import CLASS_IDS, DEFECT_CLASSES

# importing this module needs no torch (the CLI reads these defaults); the functions that export do
MIN_INT8_AGREEMENT = 0.99
CALIB_PERCENTILE = 99.9  # activation ranges cut at this percentile of the calibration histogram


@dataclass(frozen=True)
class Int8Report:
    argmax_agreement: float  # INT8 vs FP32, all pixels
    defect_agreement: float  # INT8 vs FP32 on "a defect class or not", all pixels
    defect_recall_fp32: float  # instance recall against truth, all defect classes pooled
    defect_recall_int8: float
    n_truth_instances: int

    @property
    def recall_lost(self) -> float:
        return self.defect_recall_fp32 - self.defect_recall_int8

    def as_dict(self) -> dict[str, float]:
        return {
            "int8_vs_fp32_argmax_agreement": self.argmax_agreement,
            "int8_vs_fp32_defect_agreement": self.defect_agreement,
            "defect_recall_fp32": self.defect_recall_fp32,
            "defect_recall_int8": self.defect_recall_int8,
            "defect_recall_lost": self.recall_lost,
            "n_truth_instances": float(self.n_truth_instances),
        }


class _Reader:
    def __init__(self, inputs: list[np.ndarray]) -> None:
        self._it = iter(inputs)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"image": x}


def is_depthwise(node) -> bool:  # noqa: ANN001 - an onnx NodeProto
    """A grouped convolution (``group`` > 1): depthwise in MobileNet blocks."""
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def sensitive_nodes(path: str | Path, decoder: bool = True) -> list[str]:
    """Nodes kept in FP32: the input normalisation, the convolutions that read the normalised image,
    the convolution that writes the logits (the usual "first and last layer" exception), the halves
    of each split decoder reduce (:func:`split_reduce_convs`), the rest of the decoder
    (:func:`decoder_convs`), and every depthwise convolution
    (``group`` > 1): one 3×3 filter per channel has too few weights to share a
    channel's int8 scale well, and quantising them cost 4–9 points of argmax agreement with FP32
    (95.1 → 99.9 % on the bundled model, ``benchmarks/bench_int8_recipes.py``). ``decoder=False``:
    the decoder's other convolutions quantised (the seventh session's recipe)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    inputs = {i.name for i in g.input}
    outputs = {o.name for o in g.output}
    names, near_input = [], set(inputs)
    for node in g.node:
        if node.op_type in ("Sub", "Div", "Mul") and set(node.input) & near_input:
            names.append(node.name)
            near_input.update(node.output)
    for node in g.node:
        if node.op_type != "Conv":
            continue
        if is_depthwise(node) or set(node.input) & near_input or set(node.output) & outputs:
            names.append(node.name)
    names += [n for n in split_reduce_convs(g) if n not in names]
    if decoder:
        names += [n for n in decoder_convs(g) if n not in names]
    return names


def decoder_convs(graph) -> list[str]:  # noqa: ANN001 - an onnx GraphProto
    """The convolutions after the graph's first Resize: the U-Net decoder (the encoder has none).
    They work at the resolution that outlines thin cracks and small coating flaws; quantised, INT8's
    crack sizing band grew from 92.9 to 111.6 px (FP32 92.5) and the graph ran slower (more layout
    changes between int8 and FP32 nodes; BENCHMARKS.md, "Defect model")."""
    first = next((i for i, n in enumerate(graph.node) if n.op_type == "Resize"), len(graph.node))
    return [n.name for n in graph.node[first:] if n.op_type == "Conv"]


def split_reduce_convs(graph) -> list[str]:  # noqa: ANN001 - an onnx GraphProto
    """The two halves of each lite decoder block's split 1x1 convolution
    (:class:`magspect.models.unet.SplitReduce`): a Conv feeding a Resize, and the Conv added to that
    Resize's output. Their outputs are partial, signed sums; quantised, they cost 5 points of argmax
    agreement with FP32 on the bundled model (94.5 against 99.9 %, ``benchmarks/bench_int8_recipes.py``),
    so they stay FP32."""
    producer = {o: n for n in graph.node for o in n.output}
    names = []
    for add in graph.node:
        if add.op_type != "Add" or len(add.input) != 2:
            continue
        a, b = (producer.get(i) for i in add.input)
        for resize, other in ((a, b), (b, a)):
            if resize is None or other is None or resize.op_type != "Resize" or other.op_type != "Conv":
                continue
            before = producer.get(resize.input[0])
            if before is not None and before.op_type == "Conv":
                names += [before.name, other.name]
    return names


def same_size_inputs(inputs: list[np.ndarray], multiple: int = 32) -> list[np.ndarray]:
    """Calibration inputs of one spatial size: onnxruntime's histogram calibration stacks each
    tensor's values over the inputs and fails on images of different sizes (real validation images
    are). Inputs already alike are returned as they are; otherwise each is cut into square tiles of
    the smallest side among them (a multiple of ``multiple``), laid to cover it, so no pixel's
    statistics are dropped and none are invented by padding."""
    if len({x.shape for x in inputs}) <= 1:
        return inputs
    side = min(min(x.shape[-2:]) for x in inputs) // multiple * multiple
    if side < multiple:
        raise ValueError(f"calibration images must be at least {multiple} px on each side")
    out = []
    for x in inputs:
        h, w = x.shape[-2:]
        ys = np.unique(np.linspace(0, h - side, int(np.ceil(h / side))).round().astype(int))
        xs = np.unique(np.linspace(0, w - side, int(np.ceil(w / side))).round().astype(int))
        out += [np.ascontiguousarray(x[..., y:y + side, x0:x0 + side]) for y in ys for x0 in xs]
    return out


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    calib_inputs: list[np.ndarray],
    keep_fp32: list[str] | None = None,
    percentile: float = CALIB_PERCENTILE,
) -> Path:
    """Static INT8 (QDQ, per-channel, uint8 activations / int8 weights) of ``fp32_path``.

    ``keep_fp32``: node names left unquantised (default :func:`sensitive_nodes`; ``[]`` for none).
    ``percentile``: each activation's range is cut at this percentile of its calibration histogram."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        if keep_fp32 is None:  # names after pre-processing, which may fuse or rename nodes
            keep_fp32 = sensitive_nodes(pre)
        quantize_static(
            str(pre),
            str(out_path),
            _Reader(same_size_inputs(calib_inputs)),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Percentile,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=list(keep_fp32),
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True, "CalibPercentile": percentile},
        )
    return out_path


def compare_int8(
    fp32_path: str | Path, int8_path: str | Path, views: list[tuple[np.ndarray, np.ndarray]]
) -> Int8Report:
    """``views``: ``(1 x C x H x W float input, H x W truth mask)``; H, W multiples of 32. Compared
    at full size (the FP32 manifest's ``output_stride`` applied to both, as the runtime does)."""
    from magspect.models.manifest import Manifest, full_resolution_logits
    from magspect.training.export import ort_session

    try:
        stride = Manifest.from_onnx(fp32_path).output_stride
    except ValueError:  # a bare export without a manifest: full-resolution logits
        stride = 1
    s32, s8 = ort_session(fp32_path), ort_session(int8_path)
    agree = agree_defect = total = 0
    first_defect = min(CLASS_IDS[c] for c in DEFECT_CLASSES)
    m32, m8 = SegMetrics(), SegMetrics()
    for x, truth in views:
        p32 = full_resolution_logits(s32.run(["logits"], {"image": x})[0], stride).argmax(1)[0]
        p8 = full_resolution_logits(s8.run(["logits"], {"image": x})[0], stride).argmax(1)[0]
        agree += int((p32 == p8).sum())
        agree_defect += int(((p32 >= first_defect) == (p8 >= first_defect)).sum())
        total += p32.size
        m32.update(p32.astype(np.uint8), truth)
        m8.update(p8.astype(np.uint8), truth)
    n_truth = sum(m32.truths[c] for c in DEFECT_CLASSES)
    r32 = sum(m32.found[c] for c in DEFECT_CLASSES) / n_truth if n_truth else float("nan")
    r8 = sum(m8.found[c] for c in DEFECT_CLASSES) / n_truth if n_truth else float("nan")
    return Int8Report(agree / max(total, 1), agree_defect / max(total, 1), r32, r8, n_truth)


def calibration_inputs(cfg, n_views: int, in_chans: int, *, crops_per_view: int = 2) -> list[np.ndarray]:  # noqa: ANN001
    """INT8 calibration inputs: ``crops_per_view`` crops (up to 256 px, half of them on a defect) from
    each of ``n_views`` views of ``cfg``'s training data (a :class:`TrainConfig`; its synthetic stream
    is rendered afresh when its cache is not complete), drawn with a fixed seed."""
    from magspect.training.data import crop_pair, pick_crop_origin, to_unit_float, unpack_sample
    from magspect.training.loop import build_source

    if cfg.data.cache_dir is not None and not Path(cfg.data.cache_dir, "DONE").exists():
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"cache_dir": None})})
    source = build_source(cfg, is_main=True)
    rng = np.random.default_rng(20240917)
    crop = min(256, cfg.data.crop_px * 2)
    calib = []
    for _ in range(n_views):
        image, mask, _ = unpack_sample(source.sample(rng))
        x = to_unit_float(image, in_chans)
        for _ in range(crops_per_view):
            y0, x0 = pick_crop_origin(mask, crop, 0.5, rng)
            xc, _m = crop_pair(x, mask, y0, x0, crop)
            calib.append(np.ascontiguousarray(xc.transpose(2, 0, 1)[None], dtype=np.float32))
    return calib


def comparison_views(
    views: list[tuple[np.ndarray, np.ndarray]], in_chans: int, multiple: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validation ``(image, mask)`` views cut to their part with its context, as the runtime runs the
    model (:mod:`magspect.inspect`), padded to ``multiple``: the inputs of :func:`compare_int8`."""
    from magspect.training.data import to_unit_float
    from magspect.training.export import _pad_mask, _pad_to
    from magspect.training.validate import part_box

    out = []
    for im, m in views:
        y0, y1, x0, x1 = part_box(m, 32)
        x = _pad_to(to_unit_float(im[y0:y1, x0:x1], in_chans).transpose(2, 0, 1)[None], multiple)
        out.append((np.ascontiguousarray(x, dtype=np.float32), _pad_mask(m[y0:y1, x0:x1], multiple)))
    return out


def int8_from_fp32(
    fp32_path: str | Path,
    int8_path: str | Path,
    manifest,  # noqa: ANN001 - the FP32 file's magspect.models.manifest.Manifest
    calib: list[np.ndarray],
    cmp_views: list[tuple[np.ndarray, np.ndarray]],
    *,
    percentile: float = CALIB_PERCENTILE,
    min_agreement: float = MIN_INT8_AGREEMENT,
) -> dict[str, float]:
    """Quantise ``fp32_path`` to ``int8_path`` (:func:`quantize_int8`), compare it with FP32 on
    ``cmp_views`` (:func:`compare_int8`) and embed ``manifest`` as INT8 with that comparison and the
    calibration recipe in its ``parity``. Returns those figures; raises
    :class:`magspect.training.export.ExportError` (carrying them as ``.int8``) when the argmax
    agreement is under ``min_agreement``: the file is left for inspection, its manifest says why."""
    from magspect.training.export import ExportError, embed_manifest

    if not cmp_views:
        raise ExportError("INT8 comparison needs validation views (val.source is 'none')")
    if not 50.0 < percentile <= 100.0:
        raise ExportError(f"calibration percentile must be in (50, 100], got {percentile}")
    quantize_int8(fp32_path, int8_path, calib, percentile=percentile)
    rep = compare_int8(fp32_path, int8_path, cmp_views).as_dict()
    rep |= {"int8_calib_inputs": float(len(calib)), "int8_calib_percentile": float(percentile)}
    m8 = manifest.model_copy(update={"precision": "int8", "parity": {**manifest.parity, **rep}})
    embed_manifest(int8_path, m8)
    if rep["int8_vs_fp32_argmax_agreement"] < min_agreement:
        err = ExportError(
            f"INT8 model {int8_path} agrees with FP32 on only {100 * rep['int8_vs_fp32_argmax_agreement']:.3f} % "
            f"of pixels (limit {100 * min_agreement:.1f} %)"
        )
        err.int8 = rep
        raise err
    return rep
