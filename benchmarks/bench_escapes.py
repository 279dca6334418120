"""What the escaped parts of an evaluation are: their rejectable truth defects, what was reported
for them, and whether the part was rejected without the look-alike verifier (and on what).

    .venv/bin/magspect evaluate --suite magsynth-v2 --json eval.json
    .venv/bin/python benchmarks/bench_escapes.py eval.json

Each escaped part (``escaped_parts`` in the JSON) is regenerated from its seed and inspected again
with and without the evaluation's verifier (``--verifier FILE`` when it was not a bundled one), under
the evaluation's lighting; the candidates the verifier dismissed are labelled against
the truth (``None`` = touches a truth defect). Each truth defect is shown with its view's lighting:
hairline cracks at 12-25 um/px show only under dark-field light (the brief's imaging practice).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter


def _deep(depth_mm: float | None) -> str:
    return "" if depth_mm is None else f" deep {depth_mm:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evaluation", help="a `magspect evaluate --json` file")
    ap.add_argument("--verifier", default=None,
                    help="the verifier file the evaluation used, when it is not a bundled one")
    args = ap.parse_args()

    from _rejudge import replay
    from magspect.datasets import generate_part, get_suite
    from magspect.datasets._writer import spec_for_seed
    from magspect.inspect.evaluate import _rejectable
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.metrics import reported_defect_causes

    ev = json.loads(open(args.evaluation).read())
    suite = get_suite(ev["suite"])
    cfg, verifier = replay(ev, args.verifier)  # the evaluation's lighting and verifier
    with_v, without = Inspector(verifier=verifier), Inspector(verifier=False)
    kinds: Counter = Counter()
    lights: Counter = Counter()  # rejectable truth defects by class and the lighting of their view
    lucky = 0
    for pid in ev["escaped_parts"]:
        seed = int(pid.rsplit("-s", 1)[1])
        part = generate_part(spec_for_seed(seed, suite.spec_ids), seed, cfg)
        t = part.truth
        kw = {"spec": t["spec_id"], "um_per_px": {v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
              "backlights": {v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None}}
        views = {v: rv.image for v, rv in part.views.items()}
        r1, r0 = with_v.inspect(views, **kw), without.inspect(views, **kw)
        rej = [d for d in t["defects"] if _rejectable(t["spec_id"], d)]
        kinds.update(f"{d['class_name']}/{d.get('subtype')}" for d in rej)
        light = {v: str(rv.truth.get("lighting")) for v, rv in part.views.items()}

        def lit(d: dict, light: dict = light) -> str:
            return light.get(d["view"], "?")

        lights.update(f"{d['class_name']} {lit(d)}" for d in rej)
        truth = ", ".join(f"{d['class_name']} {d.get('subtype')} {d['view']} ({lit(d)}) {d['length_mm']:.2f} mm"
                          + _deep(d.get("depth_mm")) for d in rej)
        found = ", ".join(f"{d.class_name} {d.view} {d.length_mm:.2f} mm" + _deep(d.depth_mm) for d in r1.defects)
        causes = [reported_defect_causes([d.bbox_xyxy_px], part.views[d.view].class_mask,
                                         part.views[d.view].truth.get("nuisances", []))[0] for d in r1.dismissed]
        before = r0.verdict.value
        lucky += before != "PASS" and all(c is not None for c in causes)
        print(f"{pid}: truth [{truth}] | reported [{found}] | without verifier {before}; dismissed {causes}")
    print(f"\n{len(ev['escaped_parts'])} escaped parts; rejected without the verifier and nothing real dismissed: "
          f"{lucky}; rejectable truth defects: {dict(kinds)}; by the lighting of their view: {dict(lights)}")


if __name__ == "__main__":
    main()
