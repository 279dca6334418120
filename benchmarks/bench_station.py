"""Camera station speed: sustained parts/s, then zero deadline misses at 80 % of it, with p99 latency.

The simulated line feeds 1024x1024 top and side views (plus their back-lit images for metrology) of
parts rendered once up front and cycled; the station runs its real stages (acquisition, inference
workers with batching when behind, deadline watchdog, output, records to a local SQLite store).

1. Sustained rate: parts arrive faster than the station can inspect them, with a long deadline and
   a queue deep enough to hold them all; parts/s = parts inspected / time from first trigger to
   last verdict. The first parts fill the pipeline (warm-up, queues), so short runs read low: 40
   parts gave 8.1 parts/s where 120 gave 10.2-10.6 on the same machine and code.
2. 80 % of that rate for ``--parts-80`` parts with ``--deadline-ms``: deadline misses (must be 0),
   fail-safe rejects, p50/p99 latency (trigger -> verdict).

    .venv/bin/python benchmarks/bench_station.py            # the bundled FP32 model
    .venv/bin/python benchmarks/bench_station.py --model path/to/model-int8.onnx
    .venv/bin/python benchmarks/bench_station.py --processes 2 --threads 2   # worker processes (model.processes)

Without a model file it says so and exits 0 (the bundled model ships with a release).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def _station(args, rate_hz: float, n_parts: int, deadline_ms: float, queue_size: int, data_dir: Path, pool):  # noqa: ANN001, ANN202
    from magspect.edge import RecordSink, SimulatedLine, Station
    from magspect.store import RecordStore

    line = SimulatedLine(args.spec, rate_hz=rate_hz, n_parts=n_parts, size_px=args.size_px, rendered=pool)
    records = RecordSink(RecordStore(data_dir=data_dir))
    return Station(line, pool_inspector(args), args.spec, deadline_ms=deadline_ms, queue_size=queue_size,
                   workers=args.workers, records=records)


_INSPECTOR = None


def pool_inspector(args):  # noqa: ANN001, ANN201
    global _INSPECTOR
    if _INSPECTOR is None and args.processes:
        from magspect.inspect.procpool import InspectorSettings, ProcessInspector

        if args.tile_px:
            raise SystemExit("--tile-px is not available with --processes")
        _INSPECTOR = ProcessInspector(InspectorSettings(
            model=args.model, threads=args.threads, spin=args.spin, max_batch_images=args.max_batch_images,
            verifier=False if args.no_verifier else None), args.processes)
    if _INSPECTOR is None:
        from magspect.inspect import Inspector, Segmenter
        from magspect.inspect.batching import BatchingSegmenter

        seg = Segmenter(args.model, threads=args.threads, warmup=True, spin=args.spin, confidence="defects")
        if args.tile_px:  # what-if: the model's tile size overridden (a model property; see BENCHMARKS.md)
            seg.manifest = seg.manifest.model_copy(update={"tile_size_px": args.tile_px})
        _INSPECTOR = Inspector(segmenter=BatchingSegmenter(seg, max_images=args.max_batch_images),
                               verifier=False if args.no_verifier else None)
    return _INSPECTOR


def _run(st) -> dict:  # noqa: ANN001
    st.start()
    st.wait_source_done(3600)
    st.stop(timeout_s=3600)
    lat = sorted(st.latencies_ms())
    c = st.counters

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))] if lat else float("nan")

    return {"acquired": c.acquired, "inspected": c.inspected, "fail_safe": c.fail_safe,
            "deadline_misses": c.deadline_misses, "overload_rejects": c.overload_rejects, "recorded": c.recorded,
            "p50_ms": round(pct(50), 1), "p99_ms": round(pct(99), 1), "max_ms": round(lat[-1], 1) if lat else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None, help="ONNX model [default: the bundled FP32 one]")
    ap.add_argument("--spec", default="def-blk-20x10x5-nicuni")
    ap.add_argument("--size-px", type=int, default=1024)
    ap.add_argument("--pool", type=int, default=6, help="distinct parts rendered up front")
    ap.add_argument("--parts", type=int, default=120, help="parts in the sustained-rate phase")
    ap.add_argument("--parts-80", type=int, default=100, help="parts in the 80 %% phase")
    ap.add_argument("--deadline-ms", type=float, default=3000.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (per process)")
    ap.add_argument("--processes", type=int, default=0,
                    help="inspect in N worker processes (the station's model.processes, whose default is "
                         "--workers); 0: in this process, threads (this script's default, as in earlier runs)")
    ap.add_argument("--max-batch-images", type=int, default=8)
    ap.add_argument("--spin", action="store_true",
                    help="onnxruntime pool threads spin while idle (the station's default, model.spin: false, sleeps)")
    ap.add_argument("--seed", type=int, default=500)
    ap.add_argument("--no-verifier", action="store_true", help="without the look-alike verifier")
    ap.add_argument("--tile-px", type=int, default=None, help="what-if: override the manifest's tile size")
    args = ap.parse_args()
    if args.model is None:
        from magspect.inspect import bundled_model_path

        args.model = bundled_model_path(int8=False)
    if not Path(args.model).is_file():
        print(f"SKIP: no model at {args.model} (pass --model)")
        return
    import cv2

    from magspect.models.manifest import Manifest

    cv2.setNumThreads(1)  # the workers are the parallelism
    from magspect.edge._sim import SimulatedLine

    t = time.perf_counter()
    src = SimulatedLine(args.spec, size_px=args.size_px, seed=args.seed, prerender=args.pool)
    src.open()
    pool = src.rendered
    print(f"rendered {len(pool)} parts ({args.size_px} px, top+side, front- and back-lit) in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    pool_inspector(args)
    with tempfile.TemporaryDirectory() as tmp:
        st = _station(args, 1000.0, args.parts, 3.6e6, args.parts + 1, Path(tmp) / "a", pool)
        t0 = time.monotonic()
        sustained = _run(st)
        elapsed = st.last_decided_s - t0  # the line starts at once: the first trigger is t0
        rate = sustained["inspected"] / elapsed
        sustained.update(parts_per_s=round(rate, 3), elapsed_s=round(elapsed, 1))
        print("sustained:", json.dumps(sustained), file=sys.stderr)
        st80 = _station(args, 0.8 * rate, args.parts_80, args.deadline_ms, 64, Path(tmp) / "b", pool)
        at80 = _run(st80)
        at80.update(rate_hz=round(0.8 * rate, 3), deadline_ms=args.deadline_ms)
        print("at 80 %:", json.dumps(at80), file=sys.stderr)
    out = {
        "model": str(args.model), "verifier": not args.no_verifier, "size_px": args.size_px, "views": 2,
        "workers": args.workers, "processes": args.processes,
        "threads": args.threads, "spin": args.spin, "max_batch_images": args.max_batch_images,
        "cpus": os.cpu_count(),
        "tile_px": args.tile_px or Manifest.from_onnx(args.model).tile_size_px,
        "python": platform.python_version(), "sustained": sustained, "at_80pct": at80,
    }
    print(json.dumps(out, indent=1))
    if hasattr(pool_inspector(args), "close"):
        pool_inspector(args).close()


if __name__ == "__main__":
    main()
