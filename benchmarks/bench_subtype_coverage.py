"""The coating-flaw subtype classifier's operating point: what each strict coverage would relieve.

    .venv/bin/python benchmarks/bench_subtype_coverage.py runs/s8/subtypes60/subtypes.onnx runs/s8/subtypes/mined \
        --val-parts 400 --coverages 0.995,0.99,0.98

On the held-out flaws of a ``magspect train-subtypes`` run (its mined folder, the last ``--val-parts``
parts), for each coverage of the strict flaws (blister, peel, rust, scratch, other: the true subtype
kept plausible for that share of them) prints ``plausible_at`` and the share of each subtype relieved
of the strictest reading (every plausible subtype lenient: pit or stain), then the strict flaws the
classifier is least sure of. Choose a point here, check it on validation parts
(``magspect evaluate --split val --subtypes ...``), set it with ``magspect tune-subtypes --plausible-at``.
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("classifier", help="an exported subtype classifier (subtypes.onnx)")
    ap.add_argument("mined", help="the mined/ folder of its training run")
    ap.add_argument("--val-parts", type=int, default=400, help="held-out parts, as in training")
    ap.add_argument("--coverages", default="0.995,0.99,0.98", help="comma-separated strict coverages")
    ap.add_argument("--worst", type=int, default=5, help="how many of the least sure strict flaws to list")
    args = ap.parse_args()

    import numpy as np

    from magspect.inspect.subtype import SUBTYPE_LABELS, SubtypeClassifier
    from magspect.training.subtype import choose_plausible_at, evaluate_subtypes, lenient_subtypes, subtype_samples
    from magspect.training.verifier import split_by_seed
    from magspect.training.verifier_data import load_mined

    data = load_mined(args.mined)
    rows, y = subtype_samples(data)
    _, va = split_by_seed({"seed": data["seed"][rows]}, args.val_parts)
    clf = SubtypeClassifier(args.classifier)
    probs = clf.probabilities(data["patches"][rows[va]].astype(np.float32), data["features"][rows[va]])
    yv, lenient = y[va], lenient_subtypes()
    strict = ~np.isin(np.array(SUBTYPE_LABELS)[yv], lenient)
    print(f"# {args.classifier}: {len(yv)} held-out flaws ({int(strict.sum())} strict), shipped point "
          f"{clf.manifest.plausible_at:.4g}")
    print("| strict coverage | plausible_at | strict relieved | " + " | ".join(SUBTYPE_LABELS) + " |")
    print("|---|---|---|" + "---|" * len(SUBTYPE_LABELS))
    for cov in (float(c) for c in args.coverages.split(",")):
        at = choose_plausible_at(probs, yv, strict, cov, 0.98)
        r = evaluate_subtypes(probs, yv, at, lenient)
        cells = " | ".join(f"{100 * r.per_label[lab]['relieved']:.0f} %" for lab in SUBTYPE_LABELS)
        print(f"| {cov:g} | {at:.4f} | {int(round(r.relieved_strict * strict.sum()))} | {cells} |")
    p_true = probs[np.arange(len(yv)), yv]
    print("least sure strict flaws (true subtype: its probability; what it was read as):")
    for i in np.argsort(np.where(strict, p_true, np.inf))[: args.worst]:
        read = ", ".join(f"{SUBTYPE_LABELS[k]} {q:.3f}" for k, q in enumerate(probs[i]) if q >= 0.01)
        print(f"  {SUBTYPE_LABELS[yv[i]]}: {p_true[i]:.4f}; {read}")


if __name__ == "__main__":
    main()
