"""The look-alike verifier's operating point, swept: escapes, false rejects and reviews per threshold.

The first ``--n`` parts of a magsynth-v2 split go through the whole Inspector once without a
verifier (FP32, bundled model unless ``--model``); each verifier given scores every reported defect;
then for each threshold the defects scored under it are dropped and the spec's gate judges the part
again (a view that hides the surface still forces REVIEW). Tune on ``val``, never on ``test``.

    .venv/bin/python benchmarks/bench_verifier_thresholds.py runs/verifier/verifier.onnx --split val --n 150
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verifiers", nargs="+", help="verifier ONNX files")
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--thresholds", default="0.01,0.02,0.05,0.1,0.2,0.3,0.5")
    args = ap.parse_args()

    import numpy as np

    from magspect.datasets import get_suite
    from magspect.inspect.evaluate import true_verdict_of
    from magspect.inspect.gate import combine, judge
    from magspect.inspect.geometry_defects import defect_pixels
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.verifier import Verifier
    from magspect.specs import get_spec
    from magspect.types import Verdict

    insp = Inspector(model=args.model, verifier=False)
    verifiers = [Verifier(p) for p in args.verifiers]
    parts = []  # (spec, measurements, defects, hidden reasons, truth, [scores per verifier])
    for part in get_suite("magsynth-v2").iter_parts(args.split, limit=args.n):
        t = part.truth
        ins = insp.inspect_detailed(
            {v: rv.image for v, rv in part.views.items()},
            spec=t["spec_id"],
            part_id=str(t["part_id"]),
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        r = ins.result
        scores = []
        for ver in verifiers:
            s = np.ones(len(r.defects), np.float32)
            for v, art in ins.views.items():
                idx = [i for i, d in enumerate(r.defects) if d.view == v]
                if idx and art.segmentation is not None:
                    s[idx] = ver.score_defects(art.image, defect_pixels(art.segmentation.class_mask),
                                               [r.defects[i] for i in idx])
            scores.append(s)
        hidden = [x for x in r.reasons if x.rule == "inspection.surface_not_visible"]
        parts.append((get_spec(t["spec_id"]), r.measurements, r.defects, hidden, true_verdict_of(t), scores))

    def rates(k: int, th: float) -> tuple[float, float, float, float]:
        esc = fr = rev = n_bad = n_good = gone = 0
        for spec, meas, defects, hidden, truth, scores in parts:
            kept = [d for d, s in zip(defects, scores[k], strict=True) if s >= th] if k >= 0 else list(defects)
            gone += len(defects) - len(kept)
            g = judge(spec, meas, kept)
            v = combine([*g.reasons, *hidden]).verdict if hidden else g.verdict
            if truth != Verdict.PASS:
                n_bad += 1
                esc += v == Verdict.PASS
            else:
                n_good += 1
                fr += v == Verdict.REJECT
            rev += v == Verdict.REVIEW
        return esc / max(n_bad, 1), fr / max(n_good, 1), rev / max(len(parts), 1), 100 * gone / len(parts)

    print(f"# {args.n} magsynth-v2 {args.split} parts, model {args.model or 'bundled'} "
          f"(sha256 {insp.model_ref.sha256[:12]})")
    print("| verifier | threshold | escape | false rejects | reviews | dismissed per 100 parts |")
    print("|---|---|---|---|---|---|")
    e, f, r, g = rates(-1, 0.0)
    print(f"| none | — | {e:.3f} | {f:.3f} | {r:.3f} | {g:.0f} |")
    for k, ver in enumerate(verifiers):
        own = ver.manifest.keep_threshold
        for th in sorted({own, *(float(x) for x in args.thresholds.split(","))}):
            e, f, r, g = rates(k, th)
            mark = " (manifest)" if th == own else ""
            name = f"{ver.path.parent.name}/{ver.path.name}"
            print(f"| {name} | {th:.3f}{mark} | {e:.3f} | {f:.3f} | {r:.3f} | {g:.0f} |")


if __name__ == "__main__":
    main()
