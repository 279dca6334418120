"""Metrology accuracy against the generator's truth: bias and repeatability per shape and dimension.

    .venv/bin/python benchmarks/bench_metrology.py [--n 30] [--exposure-jitter 0.0]

Each spec's part is generated once per seed with the same forced dimensions (its nominals) at a
random pose, back-lit, with noise, blur and vignetting, no defects or nuisances; every view is
measured with the truth's µm/px. Bias and σ are in pixels (degrees for ``*_deg``); %GRR is
6σ / (2 × 0.05 mm) as in AIAG MSA for a ±0.05 mm tolerance.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from magspect.datasets import SynthConfig, generate_part
from magspect.inspect.metrology import measure_view
from magspect.specs import get_spec

SPECS = ("def-blk-20x10x5-nicuni", "def-disc-d10-t3-nicuni", "com-ring-od20-id10-t5", "ev-arc-r30-r25-40deg")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--exposure-jitter", type=float, default=0.0)
    ap.add_argument("--specs", nargs="*", default=list(SPECS))
    args = ap.parse_args()
    print("| spec | view | dimension | n | bias px | σ px | %GRR (±0.05 mm) | µm/px |")
    print("|---|---|---|---|---|---|---|---|")
    for spec_id in args.specs:
        spec = get_spec(spec_id)
        cfg = SynthConfig(lighting="backlight", defects=False, nuisances=False, pose="random",
                          dimensions_mm=spec.nominal_mm(), out_of_tolerance_rate=0.0,
                          exposure_jitter=args.exposure_jitter)
        errs: dict[tuple[str, str], list[float]] = {}
        scale = {}
        t0 = time.perf_counter()
        fails = 0
        for seed in range(args.n):
            part = generate_part(spec=spec_id, seed=seed, config=cfg)
            for view, rv in part.views.items():
                truth = rv.truth
                um = truth["um_per_px"]
                scale[view] = um
                try:
                    res = measure_view(rv.image, spec, view, um)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    fails += 1
                    print(f"<!-- {spec_id} seed {seed} {view}: {exc} -->")
                    continue
                for name, v in res.values.items():
                    t = truth["dimensions_mm"][name]
                    e = (v - t) if name.endswith("_deg") else (v - t) / (um / 1000)
                    errs.setdefault((view, name), []).append(e)
        for (view, name), e in errs.items():
            e = np.array(e)
            sd = e.std(ddof=1)
            if name.endswith("_deg"):
                grr = "—"
                unit = " deg"
            else:
                grr = f"{100 * 6 * sd * scale[view] / 1000 / 0.1:.1f}"
                unit = ""
            print(f"| {spec_id} | {view} | {name} | {len(e)} | {e.mean():+.4f}{unit} | {sd:.4f}{unit} | {grr} | "
                  f"{scale[view]:.3f} |")
        print(f"<!-- {spec_id}: {time.perf_counter() - t0:.1f} s, {fails} failures -->")


if __name__ == "__main__":
    main()
