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
    args = ap.parse_args()

    from magspect.datasets import get_suite
    from magspect.inspect.evaluate import true_verdict_of
    from magspect.inspect.gate import combine, judge
    from magspect.inspect.inspector import Inspector
    from magspect.specs import get_spec
    from magspect.types import Verdict

    insp = Inspector(model=args.model)
    parts = []
    for part in get_suite("magsynth-v2").iter_parts(args.split, limit=args.n):
        t = part.truth
        r = insp.inspect(
            {v: rv.image for v, rv in part.views.items()},
            spec=t["spec_id"],
            part_id=str(t["part_id"]),
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        hidden = [x for x in r.reasons if x.rule == "inspection.surface_not_visible"]
        parts.append((get_spec(t["spec_id"]), r.measurements, r.defects, hidden, true_verdict_of(t)))

    def rates(th: dict[str, float]) -> tuple[float, float, float]:
        esc = fr = rev = n_bad = n_good = 0
        for spec, meas, defects, hidden, truth in parts:
            g = judge(spec, meas, [d for d in defects if d.confidence >= th.get(d.class_name, 0.0)])
            v = combine([*g.reasons, *hidden]).verdict if hidden else g.verdict
            if truth != Verdict.PASS:
                n_bad += 1
                esc += v == Verdict.PASS
            else:
                n_good += 1
                fr += v == Verdict.REJECT
            rev += v == Verdict.REVIEW
        return esc / max(n_bad, 1), fr / max(n_good, 1), rev / max(len(parts), 1)

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
