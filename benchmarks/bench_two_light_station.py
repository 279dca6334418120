"""A station with two front lights per view: each light's image inspected on its own, the two verdicts
combined. Does a second light catch the defects one light misses, and what does it cost in false rejects?

Each part of the split is rendered once with the generator's ``second_lighting`` (same part, pose,
defects and look-alikes; the back-lit silhouette for metrology), its first-light images inspected with
that light's verifier (dark-field: the bundled dark-field verifier; coaxial or dome: the bundled one),
its second-light images likewise, and the part judged four ways against the truth:

- each light alone (the first light's row is what ``magspect evaluate --lighting L`` gives);
- ``worst``: the worse of the two verdicts (REJECT > REVIEW > PASS): a defect either light finds rejects;
- ``agree``: REJECT when both reject, PASS when both pass, else REVIEW (a person looks when they differ).

    .venv/bin/python benchmarks/bench_two_light_station.py --n 1000 --first darkfield --second coaxial
    .venv/bin/python benchmarks/bench_two_light_station.py --n 500 --start 500 ...   # a slice, then --merge
    .venv/bin/python benchmarks/bench_two_light_station.py --merge a.json b.json
"""

from __future__ import annotations

import argparse
import json

_ORDER = {"PASS": 0, "REVIEW": 1, "REJECT": 2}


def _combine(a: str, b: str, how: str) -> str:
    if how == "worst":
        return a if _ORDER[a] >= _ORDER[b] else b
    if a == b:
        return a
    return "REVIEW"


def _table(rows: list[dict]) -> None:
    from magspect.inspect.metrics import part_rates

    truth = [r["truth"] for r in rows]
    print(f"{len(rows)} parts, {sum(t != 'PASS' for t in truth)} truly nonconforming")
    print("| set-up | escape | false rejects | reviews |")
    print("|---|---|---|---|")
    set_ups = [("first light alone", [r["first"] for r in rows]), ("second light alone", [r["second"] for r in rows]),
               ("both, worst verdict", [_combine(r["first"], r["second"], "worst") for r in rows]),
               ("both, REVIEW where they differ", [_combine(r["first"], r["second"], "agree") for r in rows])]
    for name, verdicts in set_ups:
        m = part_rates(truth, verdicts)
        print(f"| {name} | {100 * m['escape_rate']:.2f} % ({m['escapes']}) | "
              f"{100 * m['false_reject_rate']:.1f} % ({m['false_rejects']}) | {100 * m['review_rate']:.1f} % |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="test")
    ap.add_argument("--n", type=int, default=1000, help="parts of the split, from --start")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--first", default="darkfield", help="coaxial, dome or darkfield")
    ap.add_argument("--second", default="coaxial", help="coaxial, dome or darkfield")
    ap.add_argument("--json", default=None,
                    help="write each part's two verdicts and inspection results here (for --merge)")
    ap.add_argument("--merge", nargs="+", default=None, metavar="JSON", help="only print the table of these slices")
    args = ap.parse_args()

    if args.merge:
        rows = [r for f in args.merge for r in json.loads(open(f).read())["parts"]]
        _table(rows)
        return

    from rich.progress import track

    from magspect.datasets import generate_part, get_suite
    from magspect.inspect.evaluate import true_verdict_of
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.verifier import bundled_verifier_path

    def inspector(light: str) -> Inspector:
        return Inspector(verifier=bundled_verifier_path("darkfield" if light == "darkfield" else None))

    if args.first == args.second:
        ap.error("--first and --second must differ")
    suite = get_suite(args.suite)
    # the first light exactly as `magspect evaluate --lighting FIRST` images it; the second drawn after it
    cfg = suite.config(args.split, light=args.first, second_lighting=args.second, backlight=True)
    first, second = inspector(args.first), inspector(args.second)
    rows = []
    parts = list(suite.parts(args.split, args.start + args.n))[args.start:]
    for spec_id, seed in track(parts, description=f"{args.first} + {args.second}"):
        part = generate_part(spec_id, seed, cfg)
        scale = {v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()}
        backs = {v: rv.backlight for v, rv in part.views.items()}
        row = {"part": f"{spec_id}-s{seed}", "truth": true_verdict_of(part.truth).value}
        for name, insp, images in (("first", first, {v: rv.image for v, rv in part.views.items()}),
                                   ("second", second, {v: rv.second for v, rv in part.views.items()})):
            r = insp.inspect(images, spec=spec_id, um_per_px=scale, backlights=backs)
            row[name] = r.verdict.value
            row[f"{name}_result"] = r.model_dump(mode="json")  # defects, dismissed, reasons: for other policies
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"suite": args.suite, "split": args.split, "first": args.first, "second": args.second,
                       "start": args.start, "parts": rows}, f)
    print(f"{args.suite}/{args.split} parts {args.start}..{args.start + len(rows) - 1}: "
          f"{args.first} then {args.second}")
    _table(rows)


if __name__ == "__main__":
    main()
