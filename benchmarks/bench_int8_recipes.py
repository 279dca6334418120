"""INT8 quantisation recipes side by side: agreement with FP32 on validation views cut to their parts.

    .venv/bin/python benchmarks/bench_int8_recipes.py runs/default/best.pt --views 3 --calib-views 32

Exports the checkpoint to FP32 ONNX, then quantises it (static QDQ, per-channel int8 weights, uint8
activations, calibrated like ``magspect export --int8``) with each recipe and prints the argmax
agreement with FP32 and the "defect class or not" agreement, on the same views, and the median time
of one run on the first view on ``--threads`` threads beside FP32's (same session options, timed
interleaved). The recipe that ``magspect.training.quantize`` ships is marked. ``--only`` keeps the
recipes whose name contains one of its comma-separated words.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--views", type=int, default=3, help="validation parts (top + side views each)")
    ap.add_argument("--calib-views", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--only", default="", help="comma-separated words: run only recipes whose name has one")
    args = ap.parse_args()

    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from magspect.training.checkpoint import load_checkpoint
    from magspect.training.config import TrainConfig
    from magspect.training.export import export_checkpoint
    from magspect.training.quantize import (
        _Reader,
        calibration_inputs,
        comparison_views,
        is_depthwise,
        sensitive_nodes,
        split_reduce_convs,
    )
    from magspect.training.validate import load_val_views

    ck = load_checkpoint(args.checkpoint)
    cfg = TrainConfig.model_validate(ck["config"])
    views = load_val_views(cfg.model_copy(update={"val": cfg.val.model_copy(update={"n_parts": args.views})}))
    cmp = comparison_views(views, ck["in_chans"], ck["model_cfg"]["input_multiple"])
    calib = calibration_inputs(cfg, args.calib_views, ck["in_chans"])  # as magspect export --int8 does

    pct = (CalibrationMethod.Percentile, {"ActivationSymmetric": False, "WeightSymmetric": True})
    recipes = [
        ("every op, min/max", None, CalibrationMethod.MinMax, {}),
        ("every op, 99.99th percentile", None, *pct[:1], {"CalibPercentile": 99.99}),
        ("convolutions, min/max", ["Conv"], CalibrationMethod.MinMax, {}),
        ("convolutions, 99.99th percentile", ["Conv"], *pct[:1], {"CalibPercentile": 99.99}),
        ("convolutions, 99.9th percentile (the second model's recipe)", ["Conv"], *pct[:1], {"CalibPercentile": 99.9}),
        ("convolutions except depthwise, 99.9th percentile (the seventh session's recipe)", ["Conv"], *pct[:1],
         {"CalibPercentile": 99.9, "_depthwise_fp32": True}),
        ("convolutions + Add + Mul, 99.99th percentile", ["Conv", "Add", "Mul"], *pct[:1], {"CalibPercentile": 99.99}),
        ("convolutions except depthwise + Resize + Concat, 99.9th percentile", ["Conv", "Resize", "Concat"],
         *pct[:1], {"CalibPercentile": 99.9, "_depthwise_fp32": True}),
        ("convolutions except depthwise, split decoder reduces quantised too, 99.9th percentile", ["Conv"],
         *pct[:1], {"CalibPercentile": 99.9, "_depthwise_fp32": True, "_split_int8": True}),
        ("encoder only (convolutions before the first Resize except depthwise), 99.9th percentile (shipped)", ["Conv"],
         *pct[:1], {"CalibPercentile": 99.9, "_depthwise_fp32": True, "_decoder_fp32": True}),
        ("encoder only (convolutions before the first Resize except depthwise), 99.99th percentile",
         ["Conv"], *pct[:1], {"CalibPercentile": 99.99, "_depthwise_fp32": True, "_decoder_fp32": True}),
        ("decoder only (convolutions after the first Resize, + Resize + Concat), 99.9th percentile",
         ["Conv", "Resize", "Concat"], *pct[:1], {"CalibPercentile": 99.9, "_encoder_fp32": True}),
    ]
    if args.only:
        words = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        recipes = [r for r in recipes if any(w in r[0].lower() for w in words)]
    with tempfile.TemporaryDirectory() as tmp:
        fp = Path(tmp) / "fp32.onnx"
        export_checkpoint(ck, fp, [x for x, _ in cmp[:1]])
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp), str(pre), skip_symbolic_shape=True)
        keep = sensitive_nodes(pre, decoder=False)  # first/last convolutions, the depthwise ones, split halves
        depthwise = {n.name for n in onnx.load(str(pre)).graph.node if is_depthwise(n)}
        split = set(split_reduce_convs(onnx.load(str(pre)).graph))  # kept FP32 by the shipped recipe
        order = [n.name for n in onnx.load(str(pre)).graph.node]
        first_resize = next((i for i, n in enumerate(onnx.load(str(pre)).graph.node) if n.op_type == "Resize"),
                            len(order))
        encoder = set(order[:first_resize])
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        s32 = ort.InferenceSession(str(fp), so, providers=["CPUExecutionProvider"])
        ref = [s32.run(None, {"image": x})[0].argmax(1) for x, _ in cmp]
        x0_ = cmp[0][0]

        def timed(sess) -> float:  # noqa: ANN001
            sess.run(None, {"image": x0_})
            ts = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                sess.run(None, {"image": x0_})
                ts.append((time.perf_counter() - t) * 1e3)
            return float(np.median(ts))

        print(f"# {args.checkpoint}, {len(cmp)} views cut to their parts, {len(calib)} calibration crops; "
              f"ms: median of {args.repeats} runs on a {x0_.shape[3]}x{x0_.shape[2]} view, {args.threads} threads")
        print("| recipe | argmax agreement | defect-or-not agreement | INT8 ms | FP32 ms | quantise s |")
        print("|---|---|---|---|---|---|")
        for name, ops, method, extra in recipes:
            out = Path(tmp) / "int8.onnx"
            t = time.perf_counter()
            kw = {"op_types_to_quantize": ops} if ops else {}
            extra = dict(extra)
            excl = keep if extra.pop("_depthwise_fp32", False) else [k for k in keep if k not in depthwise]
            if extra.pop("_encoder_fp32", False):
                excl = sorted(set(excl) | encoder)
            if extra.pop("_split_int8", False):
                excl = [k for k in excl if k not in split]
            if extra.pop("_decoder_fp32", False):
                excl = sorted(set(excl) | (set(order) - encoder))
            quantize_static(str(pre), str(out), _Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                            nodes_to_exclude=excl, extra_options={**pct[1], **extra}, **kw)
            s8 = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            agree = agree_def = total = 0
            for (x, _), p32 in zip(cmp, ref, strict=True):
                p8 = s8.run(None, {"image": x})[0].argmax(1)
                agree += int((p8 == p32).sum())
                agree_def += int(((p8 >= 2) == (p32 >= 2)).sum())
                total += p32.size
            q_s = time.perf_counter() - t
            s8t = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
            ms8, ms32 = timed(s8t), timed(s32)
            print(f"| {name} | {100 * agree / total:.1f} % | {100 * agree_def / total:.2f} % | {ms8:.1f} | "
                  f"{ms32:.1f} | {q_s:.0f} |", flush=True)


if __name__ == "__main__":
    main()
