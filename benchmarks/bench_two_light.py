"""Would a second light per view tell lint fibres from cracks? Candidates found under dark-field light,
their glow there against their darkening under a second front light.

A crack is a cavity: it glows under a low-angle ring light and goes dark under diffuse or coaxial
light. A fibre lying on top scatters too. If the two differ in how much darker they go under the
second light *per unit of dark-field glow* (a ratio the candidate's width and coverage cancel out
of), a station with two lights per view could dismiss lint the first image alone cannot.

Each part of the split is imaged under dark-field light (as a dark-field station: the bundled
dark-field verifier, the back-lit silhouette for metrology) and, with the generator's
``second_lighting``, under each second light; every crack and coating-flaw candidate the verifier
keeps is scored on the same pixels in both images:

    ratio = (ring median - mean on the candidate) / ring median   in the second image
            / (mean on the candidate - ring median)                in the dark-field image (DN)   x 100

and the table gives its quartiles by cause, and the AUROC of lint against real defects of the
class (0.5: no use; 1 or 0: a clean cue).

    .venv/bin/python benchmarks/bench_two_light.py --n 600
"""

from __future__ import annotations

import argparse
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=600, help="the split's first N parts")
    ap.add_argument("--second", default="dome,coaxial", help="second lights, comma-separated")
    args = ap.parse_args()

    import cv2
    import numpy as np
    from rich.progress import track

    from magspect.datasets import generate_part, get_suite
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.metrics import auroc, reported_defect_causes
    from magspect.inspect.verifier import bundled_verifier_path
    from magspect.types import CLASS_IDS

    seconds = [s.strip() for s in args.second.split(",") if s.strip()]
    suite = get_suite(args.suite)
    cfgs = {s: suite.config(args.split, light="darkfield", second_lighting=s, backlight=True) for s in seconds}
    insp = Inspector(verifier=bundled_verifier_path("darkfield"))
    ratios: dict[tuple[str, str, str], list[float]] = defaultdict(list)  # (second, class, cause)
    for spec_id, seed in track(list(suite.parts(args.split, args.n)), description="parts"):
        parts = {s: generate_part(spec_id, seed, c) for s, c in cfgs.items()}
        part = parts[seconds[0]]  # the dark-field images are the same in each
        ins = insp.inspect_detailed(
            {v: rv.image for v, rv in part.views.items()}, spec=spec_id,
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        for d in ins.result.defects:
            if d.class_name not in ("crack", "coating_flaw") or d.bbox_xyxy_px is None:
                continue
            art, rv = ins.views[d.view], part.views[d.view]
            h, w = art.image.shape[:2]
            x0, y0, x1, y1 = (int(v) for v in d.bbox_xyxy_px)
            pad = 12
            xa, ya, xb, yb = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad + 1), min(h, y1 + pad + 1)
            cm = art.segmentation.class_mask[ya:yb, xa:xb]
            own = (cm == CLASS_IDS[d.class_name]).astype(np.uint8)
            if own.sum() < 3:
                continue
            # the surface around it: within 5 px of the candidate, clear of every defect pixel, on the part
            near = cv2.dilate(own, np.ones((11, 11), np.uint8)) > 0
            clear = cv2.dilate((cm >= CLASS_IDS["crack"]).astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
            ring = near & clear & (art.metrology.part_mask[ya:yb, xa:xb] > 0)
            if ring.sum() < 5:
                continue
            on = own.astype(bool)
            first = art.image[ya:yb, xa:xb].astype(np.float32)
            glow = float(first[on].mean() - np.median(first[ring]))
            cause = reported_defect_causes([d.bbox_xyxy_px], rv.class_mask, rv.truth.get("nuisances", []))[0]
            cause = "real" if cause is None else cause
            for s, p in parts.items():
                sec = p.views[d.view].second[ya:yb, xa:xb].astype(np.float32)
                med = float(np.median(sec[ring]))
                dark = (med - float(sec[on].mean())) / max(med, 1.0)
                ratios[(s, d.class_name, cause)].append(100.0 * dark / max(glow, 1.0))
    print(f"{args.n} parts of {args.suite}/{args.split} under dark-field light; kept candidates")
    print("| second light | class | cause | n | ratio: 25 / 50 / 75 % | AUROC lint vs real | "
          "lint above real's 99th percentile |")
    print("|---|---|---|---|---|---|---|")
    for (s, cls, cause), xs in sorted(ratios.items(), key=lambda kv: (kv[0][0], kv[0][1], -len(kv[1]))):
        if len(xs) < 5:
            continue
        q = np.percentile(xs, [25, 50, 75])
        auc = above = ""
        real = ratios.get((s, cls, "real"))
        if cause == "real":
            above = f"(99th percentile {np.percentile(xs, 99):.2f})"
        elif cause == "lint" and real:
            auc = f"{auroc(xs + real, [1] * len(xs) + [0] * len(real)):.2f}"
            p99 = np.percentile(real, 99)  # a fibre above every real one but 1 %: dismissable at 99 % kept
            above = f"{sum(x > p99 for x in xs)} of {len(xs)} (highest {max(xs):.2f})"
        print(f"| {s} | {cls} | {cause} | {len(xs)} | {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f} | {auc} | {above} |")


if __name__ == "__main__":
    main()
