"""INT8 against FP32, defect by defect: which rejectable defects does each INT8 file lose?

Issue 4's INT8 gate is "defect recall lost <= 1 point". Counted through ``magspect evaluate`` on a
few hundred parts, the INT8 and FP32 runs differ by a handful of defects, each run renders the parts
again, and a lost defect cannot be told from one found by another route. Here every part of a
magsynth split is rendered once and each view goes through the FP32 model and every INT8 file
given, the model alone (argmax, as the Inspector's default; no verifier, no gate). For each truth
defect a view can show and that is rejectable on its own (at or above the part's spec limits), each
model finds it or not (the evaluation's rule, ``instance_recall``: a pixel of its class within
2 px). Printed per model: found per class, lost (FP32 found it, this model did not), gained (the
reverse), recall lost in points over all rejectable defects, argmax agreement with FP32 on the part,
and nuisances (lint, dust, ...) with a defect called on them.

    .venv/bin/python benchmarks/bench_int8_recall.py [INT8.onnx ...] [--fp32 FILE] --split val --n 300

Without INT8 files, the bundled INT8 model. numpy, OpenCV, onnxruntime only.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NUISANCES = ("lint", "dust", "water_spot", "fingerprint", "glint")
CLASSES = ("crack", "chip", "coating_flaw")


@dataclass
class Tally:
    """One model's counts over the parts."""

    found: dict[str, list[bool]] = field(default_factory=lambda: {c: [] for c in CLASSES})
    nuisances_called: int = 0
    agree_px: int = 0
    total_px: int = 0


def recall_lost_points(fp32: list[bool], other: list[bool]) -> tuple[int, int, float]:
    """(lost, gained, points): ``lost`` defects found by FP32 and not by the other model, ``gained``
    the reverse, and the recall difference (FP32 minus other) in points over all of them."""
    if len(fp32) != len(other):
        raise ValueError(f"the two models were scored on different defects ({len(fp32)} vs {len(other)})")
    lost = sum(a and not b for a, b in zip(fp32, other, strict=True))
    gained = sum(b and not a for a, b in zip(fp32, other, strict=True))
    return lost, gained, 100.0 * (lost - gained) / len(fp32) if fp32 else float("nan")


def measure(fp32: str, others: list[str], suite: str, split: str, n: int) -> tuple[dict[str, Tally], int]:
    from magspect.datasets import get_suite
    from magspect.inspect.backend import Segmenter
    from magspect.inspect.evaluate import _rejectable
    from magspect.inspect.metrics import instance_recall
    from magspect.inspect.visibility import visible_under
    from magspect.types import CLASS_NAMES, DEFECT_CLASSES

    paths = [fp32, *others]
    segs = {p: Segmenter(p) for p in paths}
    tallies = {p: Tally() for p in paths}
    defect_ids = [CLASS_NAMES.index(c) for c in DEFECT_CLASSES]
    good_id = CLASS_NAMES.index("good_surface")
    n_nuisances = 0
    for k, part in enumerate(get_suite(suite).iter_parts(split, limit=n, backlight=False)):
        spec = part.truth["spec_id"]
        for rv in part.views.values():
            light = rv.truth.get("lighting")
            shown = {int(d["instance_id"]): d["class_name"] for d in rv.truth.get("defects", [])
                     if d.get("instance_id") is not None and visible_under(light, d["class_name"])}
            judged = [d for d in rv.truth.get("defects", [])
                      if d.get("instance_id") is not None and int(d["instance_id"]) in shown
                      and (rv.instance_mask == int(d["instance_id"])).any() and _rejectable(spec, d)]
            good = rv.class_mask == good_id
            boxes = [nu["bbox_xyxy_px"] for nu in rv.truth.get("nuisances", []) if nu["kind"] in NUISANCES]
            boxes = [b for b in boxes if good[b[1]:b[3], b[0]:b[2]].any()]
            n_nuisances += len(boxes)
            ref = None
            for p in paths:
                pred = segs[p].logits([rv.image])[0].argmax(axis=0)
                ref = pred if ref is None else ref
                t = tallies[p]
                t.agree_px += int((pred == ref).sum())
                t.total_px += pred.size
                found = instance_recall(rv.instance_mask, shown, pred)
                for d in judged:
                    t.found[d["class_name"]].append(bool(found[int(d["instance_id"])]))
                called = np.isin(pred, defect_ids)
                t.nuisances_called += sum(bool(called[y0:y1, x0:x1][good[y0:y1, x0:x1]].any())
                                          for x0, y0, x1, y1 in boxes)
        print(f"\r{k + 1}/{n} parts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return tallies, n_nuisances


def report(tallies: dict[str, Tally], fp32: str, n_nuisances: int) -> str:
    ref = tallies[fp32]
    n = {c: len(ref.found[c]) for c in CLASSES}
    head = " / ".join(f"{c} of {n[c]}" for c in CLASSES)
    out = [f"| model | found ({head}) | lost | gained | recall lost (points) | argmax agreement with FP32 "
           f"| nuisances with a defect called (of {n_nuisances}) |", "|---|---|---|---|---|---|---|"]
    pooled_ref = [f for c in CLASSES for f in ref.found[c]]
    for p, t in tallies.items():
        pooled = [f for c in CLASSES for f in t.found[c]]
        lost, gained, pts = recall_lost_points(pooled_ref, pooled)
        per_class = " / ".join(str(sum(t.found[c])) for c in CLASSES)
        name = f"{p} (FP32)" if p == fp32 else p
        out.append(f"| {name} | {per_class} | {lost} | {gained} | {pts:+.2f} | "
                   f"{100 * t.agree_px / max(t.total_px, 1):.3f} % | {t.nuisances_called} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("int8", nargs="*", help="INT8 model files (default: the bundled one)")
    ap.add_argument("--fp32", help="the FP32 model they are judged against (default: the bundled one)")
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--n", type=int, default=300, help="the first N parts of the split")
    ap.add_argument("--json", type=Path, help="write each model's found/missed lists here")
    args = ap.parse_args()
    from magspect.inspect.backend import bundled_model_path

    fp32 = args.fp32 or str(bundled_model_path())
    others = args.int8 or [str(bundled_model_path(int8=True))]
    tallies, n_nuisances = measure(fp32, others, args.suite, args.split, args.n)
    if args.json:
        args.json.write_text(json.dumps({p: {"found": t.found, "nuisances_called": t.nuisances_called,
                                             "argmax_agreement": t.agree_px / max(t.total_px, 1)}
                                         for p, t in tallies.items()}, indent=1))
    print(report(tallies, fp32, n_nuisances))


if __name__ == "__main__":
    main()
