"""The decision band around defect limits, swept: what a wider size uncertainty does to escapes,
false rejects and reviews.

The specs take a reported defect's size uncertainty as ``defect_uncertainty_px`` (1 px): a size
within it of a limit is neither proven good nor bad, so REVIEW (ISO 14253-1). ``evaluate``'s
``defect_sizing_mm`` measures how far the model's sizes really scatter (chips: σ 0.18 mm, about
7 px). The first ``--n`` parts of a magsynth-v2 split go through the whole Inspector once (bundled
models and verifier), then the gate judges them again with every defect's uncertainty multiplied.
Tune on ``val``, never on ``test``.

    .venv/bin/python benchmarks/bench_decision_band.py --split val --n 150
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--factors", default="1,2,4,8")
    args = ap.parse_args()

    from _rejudge import inspect_split, rejudge
    from magspect.inspect.inspector import Inspector

    parts = []
    for jp in inspect_split(Inspector(), args.split, args.n):
        jp.inspection = None
        parts.append(jp)
    print(f"# {args.n} magsynth-v2 {args.split} parts, bundled model and verifier")
    print("| size uncertainty (x the spec's 1 px) | escape | false rejects | reviews |")
    print("|---|---|---|---|")
    for f in (float(x) for x in args.factors.split(",")):
        e, fr, r, _ = rejudge(parts, lambda i, d: True,
                              lambda d, f=f: d.model_copy(update={"uncertainty_mm": d.uncertainty_mm * f}))
        print(f"| {f:g} | {e:.3f} | {fr:.3f} | {r:.3f} |")


if __name__ == "__main__":
    main()
