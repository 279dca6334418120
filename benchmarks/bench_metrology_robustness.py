"""Metrology on realistic parts: failures and errors on the back-lit image of every spec, both views.

    .venv/bin/python benchmarks/bench_metrology_robustness.py [--n 60] [--seed0 2000] [--specs ...]

Each part is generated with the default ``SynthConfig(backlight=True)``: random pose, random
dimensions (some out of tolerance), defects and nuisances on, noise, blur and vignetting. Each view's
back-lit companion image (``part.views[v].backlight``) is measured with the truth's µm/px.

Per spec and view it prints the failures (``measure_view`` raising, with the reasons) and, per
dimension, |error| in px (degrees for ``*_deg``) against the truth's ``dimensions_mm``: median, p95
and max over the views whose silhouette no defect touches ("clean": no chip in this view; cracks,
coating flaws and nuisances do not change a back-lit silhouette), and separately over the views with
a chip ("chipped"). Every error above ``--flag`` px (0.5) is listed with the view's defects.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import cv2
import numpy as np

from magspect.datasets import SynthConfig, generate_part
from magspect.inspect.metrology import measure_view
from magspect.specs import list_specs


def _stats(e: list[float]) -> str:
    if not e:
        return "— | — | —"
    a = np.abs(np.asarray(e))
    return f"{np.median(a):.3f} | {np.percentile(a, 95):.3f} | {a.max():.3f}"


def _reason(exc: Exception) -> str:
    msg = str(exc)
    return f"{type(exc).__name__}: {msg[:120]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=60, help="seeds per spec")
    ap.add_argument("--seed0", type=int, default=2000)
    ap.add_argument("--specs", nargs="*", default=None)
    ap.add_argument("--flag", type=float, default=0.5, help="list errors above this many px (deg)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    specs = args.specs or [s.id for s in list_specs()]
    cfg = SynthConfig(backlight=True)
    rows: list[str] = []
    notes: list[str] = []
    fail_lines: list[str] = []
    total_fail = total_views = 0
    t_all = time.perf_counter()
    t_measure = 0.0
    for spec_id in specs:
        errs: dict[tuple[str, str, bool], list[float]] = {}
        fails: dict[str, Counter] = {"top": Counter(), "side": Counter()}
        nviews: Counter = Counter()
        nchip: Counter = Counter()
        for seed in range(args.seed0, args.seed0 + args.n):
            part = generate_part(spec_id, seed, cfg)
            for view, rv in part.views.items():
                truth = rv.truth
                um = truth["um_per_px"]
                chips = [d for d in truth["defects"] if d["class_name"] == "chip"]
                chipped = bool(chips)
                nviews[view] += 1
                nchip[view] += chipped
                total_views += 1
                t0 = time.perf_counter()
                try:
                    res = measure_view(rv.backlight, spec_id, view, um)
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    t_measure += time.perf_counter() - t0
                    total_fail += 1
                    fails[view][_reason(exc)] += 1
                    desc = ", ".join(f"{d['subtype'] or d['class_name']}@{d['zone']}{d['edge_index'] or ''}"
                                     for d in truth["defects"]) or "no defect"
                    fail_lines.append(f"{spec_id} seed {seed} {view}: {_reason(exc)} [{desc}]")
                    continue
                t_measure += time.perf_counter() - t0
                for name, v in res.values.items():
                    t = truth["dimensions_mm"][name]
                    e = (v - t) if name.endswith("_deg") else (v - t) / (um / 1000)
                    errs.setdefault((view, name, chipped), []).append(e)
                    if abs(e) > args.flag:
                        desc = ", ".join(
                            f"{d['subtype'] or d['class_name']}@{d['zone']}{d['edge_index'] or ''}"
                            f" (len {d['length_mm']:.2f} depth {d['depth_mm']:.2f} mm)" for d in chips) or "no chip"
                        notes.append(f"{spec_id} seed {seed} {view} {name}: {e:+.3f} [{desc}]")
        for view in ("top", "side"):
            if not nviews[view]:
                continue
            nf = sum(fails[view].values())
            names = sorted({k[1] for k in errs if k[0] == view})
            for name in names:
                clean, chip = errs.get((view, name, False), []), errs.get((view, name, True), [])
                unit = " deg" if name.endswith("_deg") else ""
                rows.append(f"| {spec_id} | {view} | {name}{unit} | {nviews[view]} | {nf} | "
                            f"{len(clean)} | {_stats(clean)} | {len(chip)} | {_stats(chip)} |")
            if not names:
                rows.append(f"| {spec_id} | {view} | (none measured) | {nviews[view]} | {nf} | 0 | — | — | — "
                            f"| 0 | — | — | — |")
    print(f"SynthConfig(backlight=True) defaults; seeds {args.seed0}..{args.seed0 + args.n - 1} per spec; "
          f"{total_views} views, {total_fail} failures; measure_view {1000 * t_measure / max(total_views, 1):.0f} "
          f"ms/view; total {time.perf_counter() - t_all:.0f} s")
    print()
    print("| spec | view | dimension | views | failed | clean n | median | p95 | max "
          "| chipped n | median | p95 | max |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print()
    print(f"Failures ({total_fail}):")
    for line in fail_lines:
        print(f"- {line}")
    print()
    print(f"|error| > {args.flag} px (deg) ({len(notes)}):")
    for line in notes:
        print(f"- {line}")


if __name__ == "__main__":
    main()
