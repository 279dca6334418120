"""The look-alike verifier's operating point, swept: escapes, false rejects and reviews per threshold.

The first ``--n`` parts of a magsynth-v2 split go through the whole Inspector once without a
verifier (FP32, bundled model unless ``--model``); each verifier given scores every reported defect;
then for each threshold the defects scored under it are dropped and the spec's gate judges the part
again (a view that hides the surface still forces REVIEW). Tune on ``val``, never on ``test``.

    .venv/bin/python benchmarks/bench_verifier_thresholds.py runs/verifier/verifier.onnx --split val --n 150
    .venv/bin/python benchmarks/bench_verifier_thresholds.py V.onnx --lighting darkfield   # a dark-field station

``--review-below T,...``: a review band instead of a second cut. Candidates the verifier keeps
(score at/above its manifest's threshold) but scores under ``T`` are judged as the gate judges an
unsure model call: what they would reject goes to REVIEW (a person looks) instead. ``--grid``: each
band above each of ``--thresholds`` as well (a cut and a band chosen together).

The last table compares the verifiers where it matters: for each, the points (a cut, with or without
a band) with reviews within ``--max-reviews`` that no other of its points beats on both escapes and
false rejects. Compare false rejects at equal escapes: a verifier whose scores are only lower shows
fewer false rejects at the same cut and more escapes, not a better trade.
"""

from __future__ import annotations

import argparse
from typing import NamedTuple

from magspect.datasets import FRONT_LIGHTINGS


class Point(NamedTuple):
    """One operating point of one verifier (``k``: its index) and what the gate made of it."""

    k: int
    cut: float
    band: float | None  # REVIEW below (None: no band)
    escape: float
    false_rejects: float
    reviews: float


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verifiers", nargs="+", help="verifier ONNX files")
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--lighting", default=None, choices=FRONT_LIGHTINGS,
                    help="every view under this front light (a station lit that way) instead of the suite's draw")
    ap.add_argument("--spec", default=None, help="only the parts of this spec among the first --n")
    ap.add_argument("--thresholds", default="0.01,0.02,0.05,0.1,0.2,0.3,0.5")
    ap.add_argument("--review-below", default="", help="review bands above each verifier's own threshold")
    ap.add_argument("--grid", action="store_true", help="each review band above each of --thresholds too")
    ap.add_argument("--class-thresholds", default="",
                    help="also keep per class, e.g. crack=0.01,chip=0.07,coating_flaw=0.023 (first verifier), "
                         "with and without each review band")
    ap.add_argument("--max-reviews", type=float, default=0.05,
                    help="the review rate a point may reach in the last table (issue 5: 5%%)")
    args = ap.parse_args()

    import numpy as np

    from _rejudge import inspect_split, rejudge
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.verifier import Verifier

    insp = Inspector(model=args.model, verifier=False)
    verifiers = [Verifier(p) for p in args.verifiers]
    parts, scores = [], []  # scores[part][verifier][defect]
    for jp in inspect_split(insp, args.split, args.n, lighting=args.lighting, spec=args.spec):
        per_ver = []
        for ver in verifiers:
            s = np.ones(len(jp.defects), np.float32)
            for v, art in jp.inspection.views.items():
                idx = [i for i, d in enumerate(jp.defects) if d.view == v]
                if idx and art.segmentation is not None:
                    s[idx] = ver.score_defects(art.image, art.segmentation.class_mask,
                                               [jp.defects[i] for i in idx])
            per_ver.append(dict(zip(map(id, jp.defects), s.tolist(), strict=True)))
        jp.inspection = None  # the images are not needed any more
        parts.append(jp)
        scores.append(per_ver)

    def rates(k: int, th: float) -> tuple[float, float, float, float]:
        return rejudge(parts, lambda i, d: k < 0 or scores[i][k][id(d)] >= th)

    print(f"# {len(parts)} magsynth-v2 {args.split} parts of the first {args.n} ({args.spec or 'every spec'}), lit "
          f"{args.lighting or 'as the suite draws'}, model "
          f"{args.model or 'bundled'} (sha256 {insp.model_ref.sha256[:12]})")
    print("| verifier | threshold | escape | false rejects | reviews | dismissed per 100 parts |")
    print("|---|---|---|---|---|---|")
    e, f, r, g = rates(-1, 0.0)
    print(f"| none | — | {e:.3f} | {f:.3f} | {r:.3f} | {g:.0f} |")
    thresholds = [float(x) for x in args.thresholds.split(",")]
    names = [f"{ver.path.parent.name}/{ver.path.name}" for ver in verifiers]

    def cuts(ver: object) -> list[float]:  # each of --thresholds and the verifier's own
        return sorted({ver.manifest.keep_threshold, *thresholds})

    def unsure_below(band: float, score: dict[int, float]):  # noqa: ANN202
        # judged as an unsure model call: what it would reject goes to REVIEW
        return lambda d: d.model_copy(update={"confidence": 0.0}) if score[id(d)] < band else d

    points: list[Point] = []
    for k, ver in enumerate(verifiers):
        for th in cuts(ver):
            e, f, r, g = rates(k, th)
            points.append(Point(k, th, None, e, f, r))
            mark = " (manifest)" if th == ver.manifest.keep_threshold else ""
            print(f"| {names[k]} | {th:.3f}{mark} | {e:.3f} | {f:.3f} | {r:.3f} | {g:.0f} |")
    bands = [float(x) for x in args.review_below.split(",")] if args.review_below else []
    if args.class_thresholds:
        keep_at = {k: float(v) for k, v in (kv.split("=") for kv in args.class_thresholds.split(","))}
        score = {i: s for part in scores for i, s in part[0].items()}
        print("\n| kept at, per class | REVIEW (not REJECT) below | escape | false rejects | reviews |")
        print("|---|---|---|---|---|")
        for band in [0.0, *bands]:
            e, f, r, _ = rejudge(parts, lambda i, d: score[id(d)] >= keep_at[d.class_name],
                                 unsure_below(band, score))
            print(f"| {args.class_thresholds} | {band or '—'} | {e:.3f} | {f:.3f} | {r:.3f} |")
    if bands:
        print("\n| verifier | kept at | REVIEW (not REJECT) below | escape | false rejects | reviews |")
        print("|---|---|---|---|---|---|")
        for k, ver in enumerate(verifiers):
            score = {i: s for part in scores for i, s in part[k].items()}  # id(defect) -> score
            for th in cuts(ver) if args.grid else [ver.manifest.keep_threshold]:
                for band in (b for b in bands if b > th):
                    e, f, r, _ = rejudge(parts, lambda i, d, th=th, score=score: score[id(d)] >= th,
                                         unsure_below(band, score))
                    points.append(Point(k, th, band, e, f, r))
                    print(f"| {names[k]} | {th:.3f} | {band:.3f} | {e:.3f} | {f:.3f} | {r:.3f} |")
    _frontier_table(points, names, args.max_reviews)


def _frontier_table(points: list[Point], names: list[str], max_reviews: float) -> None:
    """Each verifier's points with reviews <= max_reviews that no other of its points beats on
    escapes and false rejects both (lowest escapes first)."""
    print(f"\n# each verifier's best trades with reviews <= {max_reviews:g}: compare false rejects at equal escapes")
    print("| verifier | kept at | REVIEW below | escape | false rejects | reviews |")
    print("|---|---|---|---|---|---|")
    for k, name in enumerate(names):
        best_f = float("inf")
        mine = (p for p in points if p.k == k and p.reviews <= max_reviews)
        for p in sorted(mine, key=lambda p: (p.escape, p.false_rejects, p.reviews)):
            if p.false_rejects < best_f:
                best_f = p.false_rejects
                band = "—" if p.band is None else f"{p.band:.3f}"
                print(f"| {name} | {p.cut:.3f} | {band} | {p.escape:.3f} | {p.false_rejects:.3f} | {p.reviews:.3f} |")


if __name__ == "__main__":
    main()
