"""End-to-end inspection speed: parts/s and p50/p99 latency, several set-ups side by side, one run.

Each part has a top and a side view at 1024x1024 (the generator's default station). Parts are
generated once up front, so only the Inspector is timed. The set-ups are timed interleaved, part by
part, so machine noise hits them alike. A set-up is ``fp32`` or ``int8`` (the bundled models) or a
model file (``path/to/model.onnx``: the bundled verifier runs with it if it was checked with that
model), optionally ``+noverify`` (no look-alike verifier), ``+nosubtypes`` (no coating-flaw subtype
classifier), ``+nooffpart`` (no check for crack lines running on off the part) and ``+hflip`` or
``+flips`` (test-time augmentation).

    .venv/bin/python benchmarks/bench_inspect.py --parts 40 --threads 2 --setups fp32,fp32+noverify,int8
    .venv/bin/python benchmarks/bench_inspect.py --setups fp32,old/default.onnx   # against an earlier export
    .venv/bin/python benchmarks/bench_inspect.py --setups fp32,fp32+hflip         # test-time augmentation
    .venv/bin/python benchmarks/bench_inspect.py --setups fp32,fp32+nosubtypes    # the subtype classifier's cost
    .venv/bin/python benchmarks/bench_inspect.py --setups fp32,fp32+nooffpart     # the off-part line check's cost
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--spec", default="def-blk-20x10x5-nicuni")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--setups", default="fp32,fp32+noverify,int8", help="comma-separated, first = reference")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import cv2

    cv2.setNumThreads(args.threads)
    from magspect.datasets import FRONT_LIGHTINGS, SynthConfig, generate_part
    from magspect.inspect.inspector import Inspector

    cfg = SynthConfig(backlight=True, lighting=FRONT_LIGHTINGS)  # front-lit views for defects, back-lit for dimensions
    parts = [generate_part(spec=args.spec, seed=args.seed + i, config=cfg) for i in range(args.parts)]
    inspectors = {}
    for name in args.setups.split(","):
        base, *mods = name.split("+")
        is_file = base.endswith(".onnx")
        known = {"noverify", "nosubtypes", "nooffpart", "hflip", "flips"}
        if not (is_file or base in ("fp32", "int8")) or set(mods) - known:
            raise SystemExit(f"unknown set-up {name!r}: fp32, int8 or a model FILE.onnx, optionally "
                             "+noverify, +nosubtypes, +nooffpart, +hflip or +flips")
        if is_file and not os.path.isfile(base):
            raise SystemExit(f"set-up {name!r}: no model file {base}")
        tta = next((m for m in mods if m in ("hflip", "flips")), "none")
        inspectors[name] = Inspector(base if is_file else None, int8=base == "int8", threads=args.threads,
                                     verifier=False if "noverify" in mods else None, tta=tta,
                                     subtypes=False if "nosubtypes" in mods else None,
                                     **({"off_part_run_px": 0.0} if "nooffpart" in mods else {}))
    lat: dict[str, list[float]] = {k: [] for k in inspectors}
    verdicts: dict[str, list[str]] = {k: [] for k in inspectors}
    stages: dict[str, list[dict[str, float]]] = {k: [] for k in inspectors}
    errors: dict[str, int] = {k: 0 for k in inspectors}
    for p in parts:
        views = {v: rv.image for v, rv in p.views.items()}
        scale = {v: rv.truth["um_per_px"] for v, rv in p.views.items()}
        backs = {v: rv.backlight for v, rv in p.views.items()}
        for name, insp in inspectors.items():
            t = time.perf_counter()
            r = insp.inspect(views, spec=args.spec, um_per_px=scale, backlights=backs)
            lat[name].append((time.perf_counter() - t) * 1e3)
            verdicts[name].append(r.verdict.value)
            stages[name].append(r.timings_ms)
            errors[name] += r.error is not None
    print(f"# magspect end-to-end, {args.parts} parts x 2 views at 1024x1024, {args.threads} threads")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, {time.strftime('%Y-%m-%d')}")
    print("| set-up | verifier | subtypes | parts/s (1/median) | p50 ms | p99 ms | stage medians ms | incomplete |")
    print("|---|---|---|---|---|---|---|---|")
    for name, xs in lat.items():
        xs_sorted = sorted(xs)
        p50 = statistics.median(xs)
        p99 = xs_sorted[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]
        med = {k: statistics.median(t.get(k, 0.0) for t in stages[name])
               for k in ("metrology", "model", "defects", "verify")}
        txt = ", ".join(f"{k} {v:.0f}" for k, v in med.items())
        ver = "yes" if inspectors[name].verifier is not None else "no"
        sub = "yes" if inspectors[name].subtypes is not None else "no"
        print(f"| {name} | {ver} | {sub} | {1000 / p50:.2f} | {p50:.0f} | {p99:.0f} | {txt} | {errors[name]} |")
    ref = next(iter(inspectors))
    for name in list(inspectors)[1:]:
        agree = sum(a == b for a, b in zip(verdicts[ref], verdicts[name], strict=True)) / len(parts)
        print(f"{name} vs {ref}: verdict agreement {agree:.1%}, ratio of medians {ref}/{name} "
              f"{statistics.median(lat[ref]) / statistics.median(lat[name]):.2f}")


if __name__ == "__main__":
    main()
