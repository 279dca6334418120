"""Verifiers compared on the same held-out mined candidates (a `train-verifier` run's mined/ folder,
the seeds it held out): AUROC, and how many look-alikes (and lint fibres) each dismisses when kept at
the threshold that keeps 99.5 % of the real candidates on a defect at/above a reject limit, and at its
own manifest threshold. Test-time flips are a verifier's manifest setting, so compare them as copies:
`magspect tune-verifier V --dihedral-views 8 --out V8.onnx`.

    .venv/bin/python benchmarks/bench_verifier_heldout.py runs/s11/vA/mined --seeds 308500 309000 \\
        src/magspect/models/weights/default-verifier.onnx runs/s11/ship-d8.onnx runs/s11/vA/verifier.onnx

``--by-outline 0.08,0.12`` adds, for candidates mined with the part channels, the share each verifier
keeps of real candidates and of each look-alike kind, apart for those whose close-up window holds the
part's outline (lint lying over the edge) and the rest.

Only parts no verifier compared was trained on make a fair comparison (a run's own held-out seeds are
fair for that run and for verifiers trained on other seeds). Candidates mined with the part channels (6)
can be scored by verifiers of either layout (the first 4 channels are the older layout's); 4-channel
candidates only by 4-channel verifiers.
"""

from __future__ import annotations

import argparse

import numpy as np

from magspect.inspect.metrics import auroc
from magspect.inspect.verifier import Verifier
from magspect.training.verifier import candidate_report, highest_keeping
from magspect.training.verifier_data import load_mined


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mined", help="a mined/ folder (chunk-*.npz)")
    ap.add_argument("verifiers", nargs="+", help="verifier ONNX files")
    ap.add_argument("--seeds", nargs=2, type=int, required=True, metavar=("START", "STOP"),
                    help="the held-out parts: START <= seed < STOP")
    ap.add_argument("--keep-rejectable", type=float, default=0.995)
    ap.add_argument("--by-outline", metavar="T1,T2", default=None,
                    help="6-channel candidates only: the share each verifier keeps at these thresholds, of real "
                         "ones and of each look-alike kind, apart for candidates whose close-up window holds the "
                         "part's outline (part and not part in it) and the rest")
    args = ap.parse_args()
    d = load_mined(args.mined)
    m = (d["seed"] >= args.seeds[0]) & (d["seed"] < args.seeds[1])
    if not m.any():
        raise SystemExit(f"no candidates in {args.mined} with seeds {args.seeds[0]}..{args.seeds[1] - 1}")
    patches, features = d["patches"][m].astype(np.float32), d["features"][m]
    real, rejectable, cause = d["label"][m].astype(bool), d["rejectable"][m].astype(bool), d["cause"][m]
    print(f"{m.sum()} held-out candidates: {real.sum()} real ({(real & rejectable).sum()} rejectable), "
          f"{(~real).sum()} look-alikes ({(cause[~real] == 'lint').sum()} lint)")
    share = f"{args.keep_rejectable:.1%}"
    print(f"| verifier | flips | AUROC | threshold keeping {share} of rejectable | look-alikes dismissed | lint "
          "dismissed | own threshold | real kept | look-alikes dismissed |")
    print("|---" * 9 + "|")
    all_scores = []
    for path in args.verifiers:
        v = Verifier(path)
        if v.channels > patches.shape[1]:
            raise SystemExit(f"{path} takes {v.channels}-channel patches; {args.mined} has {patches.shape[1]}")
        s = v.scores(np.ascontiguousarray(patches[:, : v.channels]), features)
        at = candidate_report(s, real, rejectable, cause, highest_keeping(s[real & rejectable], args.keep_rejectable))
        own = candidate_report(s, real, rejectable, cause, v.manifest.keep_threshold)
        lint_dismissed, n_lint = at.dismissed_false_by_cause.get("lint", (0, 0))
        print(f"| {path} | {v.manifest.dihedral_views} | {auroc(s, real):.4f} | {at.keep_threshold:.3f} | "
              f"{at.dismissed_false:.1%} | {lint_dismissed / max(n_lint, 1):.1%} | {own.keep_threshold:.3f} | "
              f"{own.kept_real:.1%} | {own.dismissed_false:.1%} |")
        all_scores.append((path, s))
    if args.by_outline:
        by_outline(patches, real, cause, all_scores, [float(t) for t in args.by_outline.split(",")])


def by_outline(patches: np.ndarray, real: np.ndarray, cause: np.ndarray, all_scores: list, thresholds: list) -> None:
    """Kept shares by group: real / lint / water spot / other look-alikes, each split by whether the
    close-up window (channel 4, the part) holds the outline."""
    if patches.shape[1] < 6:
        raise SystemExit("--by-outline needs candidates mined with the part channels (6)")
    part = patches[:, 4]
    crosses = (part.min(axis=(1, 2)) == 0) & (part.max(axis=(1, 2)) == 1)
    groups = [("real", real), ("lint", cause == "lint"), ("water spot", cause == "water_spot"),
              ("other look-alike", ~real & (cause != "lint") & (cause != "water_spot"))]
    print("\n| candidates | window holds the outline | n | " + " | ".join(
        f"{path} kept at {t:g}" for path, _ in all_scores for t in thresholds) + " |")
    print("|---" * (3 + len(all_scores) * len(thresholds)) + "|")
    for name, sel in groups:
        for where, m in (("yes", crosses), ("no", ~crosses)):
            g = sel & m
            cells = " | ".join(f"{np.mean(s[g] >= t):.1%}" if g.any() else "—"
                               for _, s in all_scores for t in thresholds)
            print(f"| {name} | {where} | {int(g.sum())} | {cells} |")


if __name__ == "__main__":
    main()
