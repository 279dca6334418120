"""Where a defect model's time goes on CPU: onnxruntime's own profiler, time per operator type.

    python benchmarks/bench_model_profile.py                      # bundled FP32 and INT8, 704x704, 1 thread
    python benchmarks/bench_model_profile.py --onnx m.onnx --size 1024 --threads 2

For each model: the operator types by total kernel time (ms per run and share), over --runs runs
after one warm-up, batch 1. 704 px is about the part box the Inspector feeds the model (the part
plus context, cut from a 1024 px view). Layout changes (Transpose, ReorderInput/Output) and
QuantizeLinear/DequantizeLinear are the price of mixing int8 and float layers.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def profile(path: Path, size: int, threads: int, runs: int) -> tuple[collections.Counter, collections.Counter]:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "prof")
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 1, size, size), dtype=np.float32)
    for _ in range(runs + 1):
        sess.run(None, {"image": x})
    events = json.loads(Path(sess.end_profiling()).read_text())
    # the first run is the warm-up: drop each node's first kernel event
    seen: set[str] = set()
    dur: collections.Counter = collections.Counter()
    nodes: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        if e["name"] not in seen:
            seen.add(e["name"])
            nodes[e["args"]["op_name"]] += 1
            continue
        dur[e["args"]["op_name"]] += e["dur"] / runs
    return dur, nodes


def main() -> None:
    from magspect.models import DEFAULT_INT8_MODEL_PATH, DEFAULT_MODEL_PATH

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", type=Path, nargs="*", default=[DEFAULT_MODEL_PATH, DEFAULT_INT8_MODEL_PATH])
    ap.add_argument("--size", type=int, default=704)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--top", type=int, default=10)
    a = ap.parse_args()
    for path in a.onnx:
        dur, nodes = profile(path, a.size, a.threads, a.runs)
        total = sum(dur.values())
        print(f"\n{path.name}: {total / 1000:.1f} ms per {a.size}x{a.size} run in kernels, {a.threads} thread(s)")
        print(f"{'operator':<24}{'ms/run':>9}{'share':>8}{'nodes':>7}")
        for op, us in dur.most_common(a.top):
            print(f"{op:<24}{us / 1000:>9.1f}{100 * us / total:>7.1f}%{nodes[op]:>7}")


if __name__ == "__main__":
    main()
