"""Defect model speed on CPU: PyTorch eager vs onnxruntime FP32 vs onnxruntime INT8, side by side.

    python benchmarks/bench_model.py                       # bundled default model, 1024x1024, 2 threads
    python benchmarks/bench_model.py --onnx m.onnx --int8 m-int8.onnx --size 512 --threads 1
    python benchmarks/bench_model.py --no-torch --onnx new.onnx --int8 new-int8.onnx \
        --also old.onnx --also old-int8.onnx

Prints ms/image (median and p90 of --repeats runs, batch 1, after --warmup runs); an ONNX model
whose logits come out at stride 2 is timed with the runtime's upsampling to full size included. The three
backends run interleaved, one image each in turn, so a busy machine slows them alike. PyTorch eager
uses the architecture named in the manifest (weights do not change the speed).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from magspect.models import DEFAULT_INT8_MODEL_PATH, DEFAULT_MODEL_PATH
from magspect.models.manifest import Manifest, full_resolution_logits


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _session(path: Path, threads: int):  # noqa: ANN202
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, default=DEFAULT_MODEL_PATH)
    ap.add_argument("--int8", type=Path, default=DEFAULT_INT8_MODEL_PATH)
    ap.add_argument("--size", type=int, default=1024, help="square image side, px")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch eager")
    ap.add_argument("--also", type=Path, action="append", default=[],
                    help="another ONNX file timed in the same loop (e.g. the previous export); repeatable")
    args = ap.parse_args()

    manifest = Manifest.from_onnx(args.onnx)
    x = np.random.default_rng(0).random((1, manifest.in_channels, args.size, args.size), dtype=np.float32)
    runners: dict[str, object] = {}
    if not args.no_torch:
        import torch

        from magspect.models import create_model

        torch.set_num_threads(args.threads)
        model = create_model(manifest.model_name, in_chans=manifest.in_channels, **manifest.model_kwargs).eval()
        xt = torch.from_numpy(x)

        def run_torch() -> None:
            with torch.inference_mode():
                model(xt)

        runners["pytorch eager fp32"] = run_torch
    def ort_runner(path: Path):  # noqa: ANN202 - the runtime's work: the graph, then logits to full size
        sess, stride = _session(path, args.threads), Manifest.from_onnx(path).output_stride
        return lambda: full_resolution_logits(sess.run(["logits"], {"image": x})[0], stride)

    runners["onnxruntime fp32"] = ort_runner(args.onnx)
    if args.int8 and Path(args.int8).exists():
        runners["onnxruntime int8"] = ort_runner(args.int8)
    for extra in args.also:
        runners[f"onnxruntime {extra.parent.name}/{extra.name}"] = ort_runner(extra)

    times: dict[str, list[float]] = {k: [] for k in runners}
    for i in range(args.warmup + args.repeats):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            fn()
            if i >= args.warmup:
                times[name].append((time.perf_counter() - t0) * 1e3)

    print(
        f"# defect model {manifest.model_name} ({args.onnx.name}), "
        f"input 1x{manifest.in_channels}x{args.size}x{args.size}"
    )
    print(
        f"# {_cpu_name()}, {args.threads} threads, {args.repeats} runs after {args.warmup} warm-up, "
        f"{datetime.now(UTC).date().isoformat()}"
    )
    base = statistics.median(times[next(iter(times))])
    w = max(22, *(len(k) for k in times))
    print(f"{'backend':<{w}} {'median ms':>10} {'p90 ms':>8} {'speed-up':>9}")
    for name, ts in times.items():
        med = statistics.median(ts)
        p90 = sorted(ts)[min(len(ts) - 1, int(round(0.9 * (len(ts) - 1))))]
        print(f"{name:<{w}} {med:>10.1f} {p90:>8.1f} {base / med:>8.2f}x")


if __name__ == "__main__":
    main()
