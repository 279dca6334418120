"""Probability of detection (POD) by image contrast: which truth defects does the segmentation model
find, and do the ones it misses show in the image at all?

For each truth defect a view can show (not hidden by its lighting) on the first N parts of a
magsynth split, the model alone (no verifier, no gate; argmax over its classes, as the Inspector's
default) either finds it or not (the evaluation's rule, `instance_recall`: a pixel of its class
within 2 px). Each defect also gets
its contrast in the image: ``snr`` = the 90th percentile, over the defect's pixels, of
``|image - median5(image)|`` divided by the robust noise of the same residual on the good surface in
a ring 3-6 px around it (1.4826 x median, floored at half an 8-bit step). A crack the image shows
well stands out at 5-10; one at 2-3 is barely above the surface texture. And for every nuisance (dust,
lint, water spot, fingerprint, glint) on the part: does the model call a defect inside its box?
That is the look-alike rate the verifier must undo. Last, what a lower defect threshold would
do: how many missed defects and how many nuisances reach each probability in ``--lower``.

    .venv/bin/python benchmarks/bench_pod.py --split val --n 400 [--model FILE] [--json out.json]

Prints POD per class by SNR band (rejectable defects: at/above the part's spec limits), the missed
rejectable defects one by one (class, subtype, lighting, length, the model's highest defect
probability on them, snr), and the nuisances' call rates. numpy, OpenCV, onnxruntime only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

LOWER = (0.3, 0.2, 0.1, 0.05)
SNR_BANDS = ((0.0, 2.0), (2.0, 3.0), (3.0, 4.0), (4.0, 6.0), (6.0, 10.0), (10.0, float("inf")))
NUISANCES = ("lint", "dust", "water_spot", "fingerprint", "glint")


def contrast_snr(image: np.ndarray, defect: np.ndarray, good: np.ndarray) -> float:
    """``defect``'s contrast against the good surface (``good``) around it; NaN without such a ring."""
    g = image.astype(np.float32)
    if g.ndim == 3:
        g = g.mean(axis=2)
    g /= 65535.0 if image.dtype == np.uint16 else 255.0
    k = np.ones((3, 3), np.uint8)
    m8 = defect.astype(np.uint8)
    ring = cv2.dilate(m8, k, iterations=6).astype(bool) & ~cv2.dilate(m8, k, iterations=2).astype(bool) & good
    if ring.sum() < 8:
        return float("nan")
    res = np.abs(g - cv2.medianBlur(g, 5))
    noise = max(1.4826 * float(np.median(res[ring])), 0.5 / 255.0)
    return float(np.percentile(res[defect], 90)) / noise


def measure(model: str | None, suite: str, split: str, n: int) -> list[dict]:
    from magspect.datasets import get_suite
    from magspect.inspect.backend import Segmenter, bundled_model_path
    from magspect.inspect.evaluate import _rejectable, defect_probability
    from magspect.inspect.metrics import instance_recall
    from magspect.inspect.visibility import visible_under
    from magspect.types import CLASS_NAMES, DEFECT_CLASSES

    seg = Segmenter(model or bundled_model_path())
    defect_ids = [CLASS_NAMES.index(c) for c in DEFECT_CLASSES]
    rows: list[dict] = []
    for k, part in enumerate(get_suite(suite).iter_parts(split, limit=n, backlight=False)):
        spec = part.truth["spec_id"]
        for view, rv in part.views.items():
            logits = seg.logits([rv.image])[0]
            p_defect = defect_probability(logits)
            pred = logits.argmax(axis=0)
            called = np.isin(pred, defect_ids)
            light = rv.truth.get("lighting")
            good = rv.class_mask == CLASS_NAMES.index("good_surface")
            shown = {int(d["instance_id"]): d["class_name"] for d in rv.truth.get("defects", [])
                     if d.get("instance_id") is not None and visible_under(light, d["class_name"])}
            found = instance_recall(rv.instance_mask, shown, pred)
            for d in rv.truth.get("defects", []):
                iid = d.get("instance_id")
                if iid is None or int(iid) not in shown:
                    continue
                m = rv.instance_mask == int(iid)
                if not m.any():
                    continue
                rows.append({"part": str(part.truth.get("part_id")), "view": view, "kind": "defect",
                             "class": d["class_name"], "subtype": d.get("subtype"), "lighting": light,
                             "length_mm": d.get("length_mm"), "rejectable": _rejectable(spec, d),
                             "found": found[int(iid)], "called": bool(called[m].any()),
                             "p_max": float(p_defect[m].max()),
                             "snr": contrast_snr(rv.image, m, good)})
            for nu in rv.truth.get("nuisances", []):
                x0, y0, x1, y1 = nu["bbox_xyxy_px"]
                on_part = good[y0:y1, x0:x1]  # the box's good surface: off the part nothing is judged
                if on_part.any():
                    rows.append({"part": str(part.truth.get("part_id")), "view": view, "kind": nu["kind"],
                                 "lighting": light, "found": bool(called[y0:y1, x0:x1][on_part].any()),
                                 "p_max": float(p_defect[y0:y1, x0:x1][on_part].max())})
        print(f"\r{k + 1}/{n} parts", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def report(rows: list[dict], lower: tuple[float, ...] = LOWER) -> str:
    out = []
    defects = [r for r in rows if r["kind"] == "defect"]
    head = " | ".join(f"snr {a:g}-{b:g}" if np.isfinite(b) else f"snr >= {a:g}" for a, b in SNR_BANDS)
    out += [f"| class | defects | {head} | snr unknown |", "|---" * (len(SNR_BANDS) + 3) + "|"]
    for cls in ("crack", "chip", "coating_flaw"):
        r = [x for x in defects if x["class"] == cls and x["rejectable"]]
        cells = []
        for a, b in SNR_BANDS:
            band = [x for x in r if a <= x["snr"] < b]
            cells.append(f"{sum(x['found'] for x in band)}/{len(band)}")
        unknown = [x for x in r if not np.isfinite(x["snr"])]
        out.append(f"| {cls} | {sum(x['found'] for x in r)}/{len(r)} found | {' | '.join(cells)} | "
                   f"{sum(x['found'] for x in unknown)}/{len(unknown)} |")
    missed = [x for x in defects if x["rejectable"] and not x["found"]]
    unseen = [x for x in missed if not x["called"]]  # no defect of any class called on it
    out += ["", f"missed rejectable defects ({len(missed)}; {len(missed) - len(unseen)} of them called a defect "
            "of another class, marked *):"]
    for x in sorted(missed, key=lambda x: (x["class"], x["snr"] if np.isfinite(x["snr"]) else 1e9)):
        mark = "*" if x["called"] else " "
        out.append(f"{mark} {x['part']} {x['view']:4s} {x['class']:12s} {x['subtype'] or '':12s} "
                   f"{x['lighting'] or '':9s} {x['length_mm']:.2f} mm  p_max {x['p_max']:.3f}  snr {x['snr']:.1f}")
    out += ["", "nuisances on the part the model calls a defect (argmax, before the verifier):"]
    for kind in NUISANCES:
        r = [x for x in rows if x["kind"] == kind]
        if r:
            called = sum(x["found"] for x in r)
            out.append(f"  {kind:12s} {called:5d} of {len(r):5d} ({called / len(r):.0%})")
    nuisances = [x for x in rows if x["kind"] in NUISANCES]
    out += ["", "a lower defect threshold (any defect class's probability summed, instead of argmax):",
            f"  argmax (as the Inspector calls): nuisances with a defect called {sum(x['found'] for x in nuisances)} "
            f"of {len(nuisances)}"]
    for t in lower:
        caught = sum(x["p_max"] >= t for x in unseen)
        out.append(f"  p >= {t:g}: missed with no defect called {caught} of {len(unseen)}; "
                   f"nuisances reaching it {sum(x['p_max'] >= t for x in nuisances)} of {len(nuisances)}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="segmentation model (default: the bundled FP32 one)")
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"))
    ap.add_argument("--n", type=int, default=400, help="the first N parts of the split")
    ap.add_argument("--json", type=Path, help="write every defect's and nuisance's row here")
    ap.add_argument("--lower", default=",".join(f"{t:g}" for t in LOWER),
                    help="defect probabilities to try as a lower threshold, comma-separated")
    args = ap.parse_args()
    rows = measure(args.model, args.suite, args.split, args.n)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(report(rows, tuple(float(t) for t in args.lower.split(","))))


if __name__ == "__main__":
    main()
