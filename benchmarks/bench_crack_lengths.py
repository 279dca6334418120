"""The cracks a suite's split holds, per subtype: how many, how long, where they start, and which parts
differ between two suites. Drawn from the generator's plans (no image is rendered: seconds, not minutes).

    .venv/bin/python benchmarks/bench_crack_lengths.py --suite magsynth-v2 magsynth-v3 --split test

For each suite: per crack subtype the count, the median length and how many are under 0.1, 0.25 and
0.4 mm, and the zones they start in. With two suites, how many parts are drawn exactly alike (same
defects, same sizes), so a change to the generator shows what it touched.

``--part SPEC-sSEED ...``: those parts' cracks in each suite (view, kind, zone, length, widest opening).

``--pieces N``: the first N parts of the (first) suite's split that hold a crack, inspected with the
bundled model and verifier as ``magspect evaluate`` does: into how many reported or dismissed crack
pieces each true crack falls, their lengths against the truth's, and what ``measure_defects`` reads on
the generator's own mask (the measurement's share of the error, not the model's):

    .venv/bin/python benchmarks/bench_crack_lengths.py --suite magsynth-v3 --split val --pieces 60
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", nargs="+", default=["magsynth-v3"], help="one suite, or two to compare")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=None, help="only the split's first N parts")
    ap.add_argument("--part", nargs="+", default=None, metavar="SPEC-sSEED", help="these parts' cracks")
    ap.add_argument("--pieces", type=int, default=None, metavar="N", help="inspect N parts with a crack")
    args = ap.parse_args()
    if len(args.suite) > 2:
        ap.error("--suite takes one suite or two")

    import numpy as np

    from magspect.datasets import get_suite, plan_defects

    if args.part:
        for name in args.part:
            spec_id, seed = name.rsplit("-s", 1)
            for suite_name in args.suite:
                cfg = get_suite(suite_name).config(args.split)
                cracks = [d for d in plan_defects(spec_id, int(seed), cfg) if d.class_name == "crack"]
                print(f"{name} {suite_name}: " + ("; ".join(
                    f"{d.view} {d.subtype} at {d.zone}, {d.length_mm:.2f} mm long, {1000 * d.width_mm:.0f} um wide"
                    for d in cracks) or "no crack"))
        return
    if args.pieces:
        pieces(get_suite(args.suite[0]), args.split, args.pieces)
        return

    plans: dict[str, list[list]] = {}
    for name in args.suite:
        suite = get_suite(name)
        cfg = suite.config(args.split)
        plans[name] = [plan_defects(spec_id, seed, cfg) for spec_id, seed in suite.parts(args.split, args.n)]
        cracks: dict[str, list] = {}
        for part in plans[name]:
            for d in part:
                if d.class_name == "crack":
                    cracks.setdefault(d.subtype, []).append(d)
        print(f"{name} {args.split} ({len(plans[name])} parts):")
        print("| subtype | cracks | median length mm | < 0.1 mm | < 0.25 mm | < 0.4 mm | zones |")
        print("|---|---|---|---|---|---|---|")
        for sub, ds in sorted(cracks.items()):
            lengths = np.array([d.length_mm for d in ds])
            zones = ", ".join(f"{z} {n}" for z, n in Counter(d.zone for d in ds).most_common())
            print(f"| {sub} | {len(ds)} | {np.median(lengths):.2f} | {(lengths < 0.1).sum()} | "
                  f"{(lengths < 0.25).sum()} | {(lengths < 0.4).sum()} | {zones} |")
    if len(args.suite) == 2:
        a, b = (plans[n] for n in args.suite)

        def key(part: list) -> list:
            return [(d.class_name, d.subtype, d.view, round(d.length_mm, 9), d.seed) for d in part]

        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if key(x) != key(y)]
        with_face = sum(any(d.subtype == "face_crack" for d in a[i] + b[i]) for i in differ)
        print(f"parts drawn alike: {len(a) - len(differ)} of {len(a)}; of the {len(differ)} that differ, "
              f"{with_face} hold a face crack in one suite or the other")


def pieces(suite, split: str, n: int) -> None:  # noqa: ANN001 - a SynthSuite
    """Each true crack of the first ``n`` parts holding one: the reported and dismissed crack pieces on
    its pixels (count, longest, all together) and the length ``measure_defects`` reads on its mask."""
    from collections import Counter

    import numpy as np

    from _truth_mask import on_truth_mask
    from magspect.datasets import generate_part, plan_defects
    from magspect.inspect.inspector import Inspector

    cfg = suite.config(split, backlight=True)
    insp = Inspector()
    rows = []  # (true length, pieces, longest piece, all pieces, length on the truth mask)
    parts = [(s, seed) for s, seed in suite.parts(split)
             if any(d.class_name == "crack" for d in plan_defects(s, seed, cfg))][:n]
    for spec_id, seed in parts:
        p = generate_part(spec_id, seed, cfg)
        r = insp.inspect({v: rv.image for v, rv in p.views.items()}, spec=spec_id,
                         um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in p.views.items()},
                         backlights={v: rv.backlight for v, rv in p.views.items()})
        for v, rv in p.views.items():
            truth, on_mask = on_truth_mask(rv, spec_id, v, "crack")
            for t in truth:
                own = rv.instance_mask == t["instance_id"]

                def on(box, own=own) -> bool:  # noqa: ANN001
                    x0, y0, x1, y1 = (int(b) for b in box)
                    return bool(own[max(y0 - 2, 0):y1 + 3, max(x0 - 2, 0):x1 + 3].any())

                hit = [d.length_mm for d in r.defects + r.dismissed
                       if d.view == v and d.class_name == "crack" and on(d.bbox_xyxy_px)]
                truth_read = max((d.length_mm for d in on_mask if on(d.bbox_xyxy_px)), default=np.nan)
                rows.append((t["length_mm"], len(hit), max(hit, default=0.0), sum(hit), truth_read))
    a = np.array(rows)
    found = a[a[:, 1] > 0]
    hist = Counter(int(min(k, 4)) for k in a[:, 1])
    per = ", ".join(f"{k if k < 4 else '4+'}: {hist[k]}" for k in sorted(hist))
    print(f"{len(parts)} parts of {suite.name}/{split} holding a crack: {len(a)} true cracks, "
          f"{len(found)} found; pieces per crack {per}")
    if len(found):
        print(f"found cracks in two or more pieces: {(found[:, 1] > 1).mean():.0%}; median true length "
              f"{np.median(found[:, 0]):.2f} mm, longest piece {np.median(found[:, 2]):.2f} mm, all pieces "
              f"{np.median(found[:, 3]):.2f} mm")
    else:
        print("no crack found")
    ratio = a[:, 4] / a[:, 0]
    print(f"on the truth masks (measure_defects): median length read / true {np.nanmedian(ratio):.2f} "
          f"(n = {int(np.isfinite(ratio).sum())})")


if __name__ == "__main__":
    main()
