"""The cracks a suite's split holds, per subtype: how many, how long, where they start, and which parts
differ between two suites. Drawn from the generator's plans (no image is rendered: seconds, not minutes).

    .venv/bin/python benchmarks/bench_crack_lengths.py --suite magsynth-v2 magsynth-v3 --split test

For each suite: per crack subtype the count, the median length and how many are under 0.1, 0.25 and
0.4 mm, and the zones they start in. With two suites, how many parts are drawn exactly alike (same
defects, same sizes), so a change to the generator shows what it touched.
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", nargs="+", default=["magsynth-v3"], help="one suite, or two to compare")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=None, help="only the split's first N parts")
    args = ap.parse_args()
    if len(args.suite) > 2:
        ap.error("--suite takes one suite or two")

    import numpy as np

    from magspect.datasets import get_suite, plan_defects

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


if __name__ == "__main__":
    main()
