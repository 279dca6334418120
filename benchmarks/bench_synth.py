"""Synthetic generator throughput: images/s at 1024x1024 on one core, masks and annotations included.

    .venv/bin/python benchmarks/bench_synth.py [--parts 20] [--repeats 3] [--size 1024]

Each repeat writes ``--parts`` parts (top + side views: PNG image, class and instance masks,
truth.jsonl, COCO annotations.json) into a temporary folder with ``write_dataset`` and times it;
it also times ``generate_part`` alone (what a training loop streams). Prints the median.
Single-threaded: OpenCV runs on one thread while rendering and BLAS threads are pinned to 1.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=1000)
    args = ap.parse_args()

    import cv2

    from magspect.datasets import SynthConfig, generate_part, magsynth_v1, write_dataset

    cv2.setNumThreads(1)
    cfg = SynthConfig(size_px=args.size)
    parts = magsynth_v1.parts("train")[args.seed:args.seed + args.parts]
    generate_part(*parts[0], cfg)  # warm-up (imports, caches)
    gen, full = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        n_img = 0
        for spec_id, seed in parts:
            n_img += len(generate_part(spec_id, seed, cfg).views)
        gen.append(n_img / (time.perf_counter() - t0))
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            counts = write_dataset(Path(tmp) / f"r{r}", parts, cfg)
            full.append(counts["images"] / (time.perf_counter() - t0))
    print(f"size {args.size}x{args.size}, {args.parts} parts x 2 views, {args.repeats} repeats, 1 thread")
    print(f"generate_part only:                 median {statistics.median(gen):.1f} images/s "
          f"(runs: {', '.join(f'{x:.1f}' for x in gen)})")
    print(f"write_dataset (PNG+masks+COCO+truth): median {statistics.median(full):.1f} images/s "
          f"(runs: {', '.join(f'{x:.1f}' for x in full)})")


if __name__ == "__main__":
    main()
