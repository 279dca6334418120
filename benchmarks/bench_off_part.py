"""How far past the part's outline the crack candidates' lines run, by what the candidates truly are.

Every crack candidate the model reports (and the verifier keeps) with an end near the outline is
scored as the Inspector's off-part check scores it (:func:`magspect.inspect.offpart.line_off_part`),
and counted by its cause (a real defect, or the look-alike it sits on). The check itself is off while
the parts are inspected, so every such candidate is seen. Use it to choose ``OFF_PART_RUN_PX``: real
cracks must stay under it.

    .venv/bin/python benchmarks/bench_off_part.py --split val --n 600
    .venv/bin/python benchmarks/bench_off_part.py --false-rejected eval.json   # an evaluation's false rejects
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=600, help="the split's first N parts")
    ap.add_argument("--false-rejected", metavar="EVAL_JSON", default=None,
                    help="only the parts a `magspect evaluate --json` file lists as false rejects "
                         "(its suite and split)")
    ap.add_argument("--run-px", type=float, default=None,
                    help="the threshold to count against (default: the shipped one)")
    args = ap.parse_args()

    import numpy as np
    from rich.progress import track

    from magspect.datasets import generate_part, get_suite
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.metrics import reported_defect_causes
    from magspect.inspect.offpart import OFF_PART_RUN_PX, line_off_part, near_outline
    from magspect.types import CLASS_IDS

    run_px = OFF_PART_RUN_PX if args.run_px is None else args.run_px
    suite_name, split, n, only = args.suite, args.split, args.n, None
    if args.false_rejected:
        ev = json.loads(open(args.false_rejected).read())
        suite_name, split, only = ev["suite"], ev["split"], set(ev["false_rejected_parts"])
        n = ev["n_parts"]
    suite = get_suite(suite_name)
    cfg = suite.config(split)
    insp = Inspector(off_part_run_px=0)  # every candidate kept: each is scored here
    runs: dict[str, list[float]] = defaultdict(list)
    ms: list[float] = []  # the check's own time per candidate looked past
    parts = [(s, seed) for s, seed in suite.parts(split, n) if only is None or f"{s}-s{seed}" in only]
    for spec_id, seed in track(parts, description=f"{suite_name}/{split}"):
        part = generate_part(spec_id, seed, cfg)
        ins = insp.inspect_detailed(
            {v: rv.image for v, rv in part.views.items()}, spec=spec_id,
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        for d in ins.result.defects:
            if d.class_name != "crack" or d.bbox_xyxy_px is None:
                continue
            art, rv = ins.views[d.view], part.views[d.view]
            x0, y0, x1, y1 = (int(v) for v in d.bbox_xyxy_px)
            own = art.segmentation.class_mask[y0:y1, x0:x1] == CLASS_IDS["crack"]
            pm = art.metrology.part_mask
            if not near_outline(pm, d.bbox_xyxy_px):
                continue
            t = time.perf_counter()
            line = line_off_part(art.image, pm, own, d.bbox_xyxy_px)
            ms.append((time.perf_counter() - t) * 1e3)
            cause = reported_defect_causes([d.bbox_xyxy_px], rv.class_mask, rv.truth.get("nuisances", []))[0]
            runs[cause or "real defect"].append(0.0 if line is None else line.run_px)
    print(f"{len(parts)} parts of {suite_name}/{split}; crack candidates near the outline, run past it "
          f"(threshold {run_px:g} px)")
    print("| candidates on | n | longest run, px | runs >= threshold |")
    print("|---|---|---|---|")
    for cause, xs in sorted(runs.items(), key=lambda kv: (kv[0] != "real defect", -len(kv[1]))):
        print(f"| {cause} | {len(xs)} | {max(xs):.1f} | {sum(x >= run_px for x in xs)} |")
    if ms:
        print(f"the check's time per candidate: median {np.median(ms):.2f} ms, max {max(ms):.2f} ms (n={len(ms)})")


if __name__ == "__main__":
    main()
