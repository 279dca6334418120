"""Would a second front light per view pay? Part-level escapes and false rejects of a station that
images each view under one lighting, against one that images it under two (or three) and rejects
on the worst verdict.

The escapes left by the bundled model are mostly faint cracks under dome or coaxial light that
dark-field light shows (BENCHMARKS.md, "Where the escapes sit"). Each of the first N parts of a
magsynth-v2 split is rendered once per lighting in ``--lights``, with the same pose, defects,
surface texture and look-alikes (only the light changes: the generator draws the lighting from the
view's random stream, so a one-choice tuple consumes the same draw; dome and coaxial light add
their glints, and the fixture shadow drawn after them differs), each view with its back-lit
companion for metrology, and inspected by the whole Inspector (model, verifier, subtypes, gate).
A multi-light station's verdict is the worst of its lights' verdicts (REJECT > REVIEW > PASS):
every defect any light shows counts, and so does every false call.

    .venv/bin/python benchmarks/bench_lighting.py --split val --n 200 [--lights dome,darkfield] [--json out.json]

Prints, for each single light and each combination: escape rate (nonconforming parts judged PASS),
false rejects (conforming parts judged REJECT) and reviews, as ``magspect evaluate`` counts them;
then, per spec, escapes and false rejects under each single light.
numpy, OpenCV, onnxruntime only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def worst(verdicts: Sequence[str]) -> str:
    """The strictest of several verdicts (REJECT > REVIEW > PASS), as the gate combines its rules."""
    return "REJECT" if "REJECT" in verdicts else "REVIEW" if "REVIEW" in verdicts else "PASS"


def rates(true_verdicts: Sequence[str], verdicts: Sequence[str]) -> dict[str, float | int]:
    """Escape / false-reject / review rates and counts: ``magspect evaluate``'s own
    (:func:`magspect.inspect.metrics.part_rates`), without the confusion matrix."""
    from magspect.inspect.metrics import part_rates

    r = part_rates(true_verdicts, verdicts)
    return {k: v for k, v in r.items() if k not in ("confusion", "accuracy")}


def combinations(lights: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty set of the lights, singles first."""
    return [c for k in range(1, len(lights) + 1) for c in itertools.combinations(lights, k)]


def table(true_verdicts: Sequence[str], by_light: Mapping[str, Sequence[str]]) -> list[dict]:
    """One row per combination of lights: its verdicts are the worst of its lights' per part."""
    rows = []
    for combo in combinations(list(by_light)):
        verdicts = [worst(vs) for vs in zip(*(by_light[x] for x in combo), strict=True)]
        rows.append({"lights": "+".join(combo), **rates(true_verdicts, verdicts)})
    return rows


def per_spec_table(parts: Sequence[Mapping], lights: Sequence[str]) -> str:
    """Markdown: for each spec, escapes / false rejects (of its conforming parts) under each light."""
    specs = sorted({p["spec"] for p in parts})
    lines = ["| spec | parts (nonconforming) | " + " | ".join(f"{x}: escapes / false rejects" for x in lights) + " |",
             "|---" * (2 + len(lights)) + "|"]
    for spec in specs:
        ps = [p for p in parts if p["spec"] == spec]
        cells = []
        for x in lights:
            r = rates([p["true_verdict"] for p in ps], [p[x] for p in ps])
            cells.append(f"{r['escapes']} / {r['false_rejects']} of {r['n_conforming']}")
        lines.append(f"| {spec} | {len(ps)} ({r['n_nonconforming']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--n", type=int, default=200, help="first N parts of the split")
    ap.add_argument("--lights", default="dome,darkfield,coaxial", help="comma-separated front lightings")
    ap.add_argument("--model", default=None, help="ONNX model [default: the bundled FP32 one]")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="write the rows and every part's verdicts here")
    args = ap.parse_args(argv)

    from magspect.datasets import FRONT_LIGHTINGS, get_suite
    from magspect.inspect.inspector import Inspector

    lights = [x.strip() for x in args.lights.split(",") if x.strip()]
    unknown = sorted(set(lights) - set(FRONT_LIGHTINGS))
    if unknown or not lights or len(set(lights)) != len(lights):
        print(f"--lights: give distinct front lightings from {', '.join(FRONT_LIGHTINGS)}; got {args.lights!r}",
              file=sys.stderr)
        return 2
    if args.n < 1:
        print("--n must be at least 1", file=sys.stderr)
        return 2
    suite = get_suite("magsynth-v2")
    inspector = Inspector(args.model, threads=args.threads)
    truths: list[str] = []
    by_light: dict[str, list[str]] = {x: [] for x in lights}
    parts_out = []
    from rich.console import Console
    from rich.progress import track

    from magspect.datasets import generate_part
    from magspect.inspect.evaluate import true_verdict_of

    for spec_id, seed in track(suite.parts(args.split, args.n), description="parts", console=Console(stderr=True)):
        row = {"spec": spec_id, "seed": seed}
        truth = None
        for light in lights:
            part = generate_part(spec_id, seed, suite.config(args.split, light=light))
            t = true_verdict_of(part.truth).value
            if truth is not None and t != truth:  # the light must not change what the part is
                raise RuntimeError(f"{spec_id} seed {seed}: truth differs between lightings")
            truth = t
            r = inspector.inspect({v: rv.image for v, rv in part.views.items()}, spec=spec_id,
                                  um_per_px={v: rv.truth["um_per_px"] for v, rv in part.views.items()},
                                  backlights={v: rv.backlight for v, rv in part.views.items()})
            by_light[light].append(r.verdict.value)
            row[light] = r.verdict.value
        truths.append(truth)
        row["true_verdict"] = truth
        parts_out.append(row)

    rows = table(truths, by_light)
    print(f"# magsynth-v2 {args.split}, first {args.n} parts ({rows[0]['n_nonconforming']} nonconforming), "
          f"model {inspector.model_ref.name}")
    print("| lights per view | escape | false rejects | reviews |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['lights']} | {r['escape_rate']:.1%} ({r['escapes']}) | {r['false_reject_rate']:.1%} "
              f"({r['false_rejects']}) | {r['review_rate']:.1%} |")
    print()
    print(per_spec_table(parts_out, lights))
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "n": args.n, "rows": rows, "parts": parts_out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
