"""Why the conforming parts of an evaluation were rejected: which false calls (class and kind, and
the nuisance or surface they sit on) or which dimensions did it.

    .venv/bin/magspect evaluate --suite magsynth-v2 --json eval.json
    .venv/bin/python benchmarks/bench_false_rejects.py eval.json [--n 200]

Each false-rejected part (``false_rejected_parts`` in the JSON) is regenerated from its seed and
inspected again with the bundled model and the evaluation's verifier (``--verifier FILE`` when it
was not a bundled one), under the evaluation's lighting. A part counts under every cause that rejects
it *alone*: the gate judges the part again with only that cause's defects (and its measurements),
so the table says what removing that kind of false call would win back.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("evaluation", help="a `magspect evaluate --json` file")
    ap.add_argument("--verifier", default=None,
                    help="the verifier file the evaluation used, when it is not a bundled one")
    ap.add_argument("--n", type=int, default=None, help="only the first N false-rejected parts")
    args = ap.parse_args()

    from _rejudge import replay
    from magspect.datasets import generate_part, get_suite
    from magspect.datasets._writer import spec_for_seed
    from magspect.inspect.gate import judge
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.metrics import reported_defect_causes
    from magspect.specs import get_spec
    from magspect.types import Verdict

    ev = json.loads(open(args.evaluation).read())
    suite = get_suite(ev["suite"])
    cfg, verifier = replay(ev, args.verifier)  # the evaluation's lighting and verifier
    insp = Inspector(verifier=verifier)
    alone: Counter = Counter()  # cause -> parts it rejects on its own
    only: Counter = Counter()  # cause -> parts it is the only rejecting cause of
    ids = ev["false_rejected_parts"][: args.n]
    for pid in ids:
        seed = int(pid.rsplit("-s", 1)[1])
        part = generate_part(spec_for_seed(seed, suite.spec_ids), seed, cfg)
        t = part.truth
        spec = get_spec(t["spec_id"])
        r = insp.inspect(
            {v: rv.image for v, rv in part.views.items()}, spec=spec,
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        groups: dict[str, list] = {}
        for d in r.defects:
            cause = reported_defect_causes([d.bbox_xyxy_px], part.views[d.view].class_mask,
                                           part.views[d.view].truth.get("nuisances", []))[0] or "real defect"
            kind = d.subtype or ("" if d.class_name != "coating_flaw" else
                                 "/".join(d.possible_subtypes) if d.possible_subtypes else "unknown kind")
            groups.setdefault(f"{d.class_name}{'/' + kind if kind else ''} on {cause}", []).append(d)
        rejecting = [k for k, ds in groups.items() if judge(spec, {}, ds).verdict == Verdict.REJECT]
        if judge(spec, r.measurements, []).verdict == Verdict.REJECT:
            rejecting.append("dimension")
        if r.error:
            rejecting.append(f"not inspected: {r.error[:40]}")
        alone.update(rejecting)
        if len(rejecting) == 1:
            only.update(rejecting)
        print(f"{pid}: {r.verdict.value}; rejected by {rejecting or ['(only together)']}")
    print(f"\n{len(ids)} false-rejected parts of {ev['n_parts'] - ev['n_nonconforming']} conforming")
    print("| cause (reported class/kind on what) | parts it rejects alone | parts it is the only cause of |")
    print("|---|---|---|")
    for cause, n in alone.most_common():
        print(f"| {cause} | {n} | {only[cause]} |")


if __name__ == "__main__":
    main()
