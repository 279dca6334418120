"""Per-class operating points, swept: what a minimum instance confidence per defect class does to
escapes, false rejects and reviews.

The first ``--n`` parts of a magsynth-v2 split go through the whole Inspector once (FP32, bundled
model unless ``--model``); then every combination of thresholds drops the reported defects whose
confidence is below their class's threshold and the spec's gate judges the part again (a view that
hides the surface still forces REVIEW). Tune on ``val``, never on ``test``.

    .venv/bin/python benchmarks/bench_class_thresholds.py --split val --n 150
"""

from __future__ import annotations

import argparse
import itertools


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--top", type=int, default=12, help="rows to print, fewest false rejects first")
    ap.add_argument("--with-verifier", action="store_true", help="after the bundled look-alike verifier")
    args = ap.parse_args()

    from _rejudge import inspect_split, rejudge
    from magspect.inspect.inspector import Inspector

    # the figures in BENCHMARKS.md were measured before the look-alike verifier: without it by default
    insp = Inspector(model=args.model, verifier=None if args.with_verifier else False)
    parts = []
    for jp in inspect_split(insp, args.split, args.n):
        jp.inspection = None
        parts.append(jp)

    def rates(th: dict[str, float]) -> tuple[float, float, float]:
        return rejudge(parts, lambda i, d: d.confidence >= th.get(d.class_name, 0.0))[:3]

    base = rates({})
    sha = insp.model_ref.sha256[:12]
    print(f"# {args.n} magsynth-v2 {args.split} parts, model {args.model or 'bundled'} (sha256 {sha})")
    print(f"argmax (no thresholds): escape {base[0]:.3f}, false rejects {base[1]:.3f}, reviews {base[2]:.3f}")
    grid = (0.0, 0.8, 0.9, 0.95, 0.97)
    rows = []
    for tc, tch, tco in itertools.product(grid, grid[:4], grid):
        th = {"crack": tc, "chip": tch, "coating_flaw": tco}
        rows.append((*rates(th), th))
    print("| crack | chip | coating flaw | escape | false rejects | reviews |")
    print("|---|---|---|---|---|---|")
    no_worse = [r for r in rows if r[0] <= base[0]]
    for e, f, r, th in (
        sorted(no_worse, key=lambda x: x[1])[: args.top // 2] + sorted(rows, key=lambda x: x[1])[: args.top // 2]
    ):
        print(f"| {th['crack']} | {th['chip']} | {th['coating_flaw']} | {e:.3f} | {f:.3f} | {r:.3f} |")


if __name__ == "__main__":
    main()
