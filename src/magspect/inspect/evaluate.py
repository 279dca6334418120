"""Run the whole pipeline on parts with known truth and compare with the truth gate.

``evaluate_parts`` is shared by ``magspect evaluate --suite`` and ``magspect demo``: it takes an
iterable of synthetic parts (anything with ``views[v].image``, ``views[v].class_mask``,
``views[v].instance_mask``, ``views[v].truth`` and a part-level ``truth``), inspects each with the
Inspector and collects part-level rates, defect recall per class and size band, nuisance false
detections, metrology bias and spread, and throughput.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from magspect.inspect.inspector import Inspection, Inspector
from magspect.inspect.metrics import (
    FALSE_CAUSES_OTHER,
    ConfusionAccumulator,
    false_detections,
    false_reported_defects,
    instance_recall,
    part_rates,
    reported_defect_causes,
)
from magspect.inspect.offpart import dismissed_off_part
from magspect.inspect.subtype import defect_relieved, lenient_subtypes
from magspect.inspect.visibility import visible_under
from magspect.specs import get_spec
from magspect.types import CLASS_NAMES, DEFECT_CLASSES, Verdict

#: Size bands relative to the spec's reject limit for the defect's class and zone.
SIZE_BANDS = ("below_limit", "at_or_above_limit")


@dataclass
class PartOutcome:
    part_id: str
    spec_id: str
    true_verdict: Verdict
    inspection: Inspection
    truth: dict[str, Any]

    @property
    def verdict(self) -> Verdict:
        return self.inspection.result.verdict


@dataclass
class Evaluation:
    outcomes: list[PartOutcome] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def true_verdict_of(part_truth: dict[str, Any]) -> Verdict:
    v = part_truth.get("verdict")
    if v in ("PASS", "REJECT", "REVIEW"):
        return Verdict(v)
    return Verdict.PASS if part_truth.get("conforming") else Verdict.REJECT


def _rejectable(spec_id: str, d: dict[str, Any]) -> bool:
    """Is this truth defect, alone, at or above a reject limit of its spec?"""
    from magspect.inspect.gate import judge_truth

    spec = get_spec(spec_id)
    nominal = spec.nominal_mm()
    return judge_truth(spec, nominal, [d]).verdict != Verdict.PASS


def evaluate_parts(
    inspector: Inspector,
    parts: Iterable[Any],
    *,
    progress: Callable[[PartOutcome], None] | None = None,
    keep_inspections: bool = False,
) -> Evaluation:
    ev = Evaluation()
    pix = ConfusionAccumulator()
    recall: dict[tuple[str, str], list[bool]] = defaultdict(list)  # (class, band) -> found?
    kind_recall: dict[str, list[bool]] = defaultdict(list)  # "class/subtype" of rejectable ones -> found?
    false_det: dict[str, int] = defaultdict(int)
    false_reported: dict[str, int] = defaultdict(int)  # reported defects on no truth defect, by cause
    dismissed: dict[str, int] = {"real": 0, "look_alike": 0}  # candidates the verifier dismissed, by truth
    off_part: dict[str, int] = {"real": 0, "look_alike": 0}  # ... and those the off-part check dismissed
    # found coating flaws by truth kind (allowed in the part's spec or not): relieved of the strictest reading?
    subtype_relief: dict[str, list[bool]] = {"lenient": [], "strict": []}
    sizing: dict[str, list[tuple[float, float, float]]] = defaultdict(list)  # class -> length, depth mm; length px
    not_visible: dict[str, int] = defaultdict(int)  # truth defects a view's lighting hides (back light)
    metro_err: dict[tuple[str, str], list[float]] = defaultdict(list)  # (spec, dim) -> measured - true
    metro_unit: dict[tuple[str, str], str] = {}
    latencies: list[float] = []
    t0 = time.perf_counter()
    for part in parts:
        truth = part.truth
        spec_id = truth["spec_id"]
        views = {v: rv.image for v, rv in part.views.items()}
        scale = {v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()}
        t = time.perf_counter()
        backs = {v: rv.backlight for v, rv in part.views.items() if getattr(rv, "backlight", None) is not None}
        insp = inspector.inspect_detailed(
            views, spec=spec_id, part_id=str(truth.get("part_id")), um_per_px=scale, backlights=backs
        )
        latencies.append((time.perf_counter() - t) * 1e3)
        outcome = PartOutcome(str(truth.get("part_id")), spec_id, true_verdict_of(truth), insp, truth)
        lenient = lenient_subtypes([get_spec(spec_id)])  # coating-flaw kinds this spec allows
        # pixels, instances, nuisances
        for v, rv in part.views.items():
            art = insp.views.get(v)
            if art is None or art.segmentation is None:
                continue
            pred = art.segmentation.class_mask
            pix.add(rv.class_mask, pred)
            classes = {
                int(d["instance_id"]): d["class_name"]
                for d in rv.truth.get("defects", [])
                if d.get("instance_id") is not None
            }
            found = instance_recall(rv.instance_mask, classes, pred)
            lighting = rv.truth.get("lighting")
            for d in rv.truth.get("defects", []):
                iid = d.get("instance_id")
                if iid is None or int(iid) not in found:
                    continue
                if not visible_under(lighting, d["class_name"]):  # not in this image: no model could find it
                    not_visible[d["class_name"]] += 1
                    continue
                band = SIZE_BANDS[1] if _rejectable(spec_id, d) else SIZE_BANDS[0]
                recall[(d["class_name"], band)].append(found[int(iid)])
                if band == SIZE_BANDS[1]:
                    kind_recall[f"{d['class_name']}/{d.get('subtype') or 'other'}"].append(found[int(iid)])
                m = _matching_report(rv.instance_mask == int(iid), d["class_name"], insp.result.defects, v)
                if m is not None and d["class_name"] == "coating_flaw":  # judged by its kind, or the strictest?
                    kind = "lenient" if d.get("subtype") in lenient else "strict"
                    subtype_relief[kind].append(defect_relieved(m, lenient))
                if m is not None:  # how well the reported defect is sized (the gate judges these numbers)
                    err_mm = m.length_mm - d["length_mm"]
                    sizing[d["class_name"]].append((err_mm, (m.depth_mm or 0.0) - (d.get("depth_mm") or 0.0),
                                                    err_mm * 1000.0 / scale[v]))
            for c, n in false_detections(rv.class_mask, pred).items():
                false_det[c] += n
            boxes = [d.bbox_xyxy_px for d in insp.result.defects if d.view == v and d.bbox_xyxy_px is not None]
            for cause in false_reported_defects(boxes, rv.class_mask, rv.truth.get("nuisances", [])):
                false_reported[cause] += 1
            gone = [d for d in insp.result.dismissed if d.view == v and d.bbox_xyxy_px is not None]
            nuisances = rv.truth.get("nuisances", [])
            causes = reported_defect_causes([d.bbox_xyxy_px for d in gone], rv.class_mask, nuisances)
            for d, cause in zip(gone, causes, strict=True):
                (off_part if dismissed_off_part(d) else dismissed)["real" if cause is None else "look_alike"] += 1
        # metrology against the true dimensions
        for name, m in insp.result.measurements.items():
            true_value = truth.get("dimensions_mm", {}).get(name)
            if m.value is not None and true_value is not None:
                metro_err[(spec_id, name)].append(m.value - float(true_value))
                metro_unit[(spec_id, name)] = m.unit
        ev.outcomes.append(outcome)
        if progress:  # sees the images and masks (e.g. to draw overlays) before they are dropped
            progress(outcome)
        if not keep_inspections:
            insp.views = {}
    wall = time.perf_counter() - t0
    n = len(ev.outcomes)
    rates = part_rates([o.true_verdict for o in ev.outcomes], [o.verdict for o in ev.outcomes])
    iou = pix.iou()
    summary: dict[str, Any] = {
        **rates,
        # the same rates for each spec (part family and grade): where the escapes and false rejects sit
        "per_spec": per_spec_rates(ev.outcomes),
        "parts_per_s": n / wall if wall > 0 else 0.0,
        "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies else None,
        "latency_ms_p99": float(np.percentile(latencies, 99)) if latencies else None,
        "iou_per_class": {c: (None if np.isnan(iou[i]) else float(iou[i])) for i, c in enumerate(CLASS_NAMES)},
        "defect_recall": {
            c: {
                b: {"n": len(recall[(c, b)]), "recall": (sum(recall[(c, b)]) / len(recall[(c, b)]))
                    if recall[(c, b)] else None}
                for b in SIZE_BANDS
            }
            for c in DEFECT_CLASSES
        },
        # the rejectable ones by kind (edge, corner and face cracks; blisters, scratches...): where the misses sit
        "rejectable_recall_by_kind": {
            k: {"n": len(v), "recall": sum(v) / len(v)} for k, v in sorted(kind_recall.items())
        },
        "defects_not_visible": dict(not_visible),
        "parts_with_surface_not_visible": sum(
            any(r.rule == "inspection.surface_not_visible" for r in o.inspection.result.reasons) for o in ev.outcomes
        ),
        "false_defects_on_clean_surface": dict(false_det),
        "false_defects_per_100_parts": (100.0 * sum(false_det.values()) / n) if n else 0.0,
        # what the part's report lists (after the detection limit), not raw pixel blobs
        "reported_false_defects_by_cause": dict(sorted(false_reported.items())),
        "reported_false_defects_per_100_parts": (100.0 * sum(false_reported.values()) / n) if n else 0.0,
        "false_defects_on_nuisances_per_100_parts": (
            100.0 * sum(v for k, v in false_reported.items() if k not in FALSE_CAUSES_OTHER) / n
        )
        if n
        else 0.0,
        # reported size minus true size for found defects (the reported one of the same class
        # overlapping the truth instance most): a model that under-segments lets big defects pass
        "defect_sizing_mm": {
            c: {
                "n": len(errs),
                "length_bias": float(np.mean([e[0] for e in errs])),
                "length_sigma": float(np.std([e[0] for e in errs], ddof=1)) if len(errs) > 1 else None,
                # in px of the view, robust (a defect found in two pieces does not swamp them): what
                # `magspect calibrate-sizing` writes into the model as its decision band
                "length_median_px": float(np.median([e[2] for e in errs])),
                "length_sigma_robust_px": _robust_sigma([e[2] for e in errs]),
                "length_uncertainty_px": size_uncertainty_px([e[2] for e in errs]),
                **({"depth_bias": float(np.mean([e[1] for e in errs])),
                    "depth_sigma": float(np.std([e[1] for e in errs], ddof=1)) if len(errs) > 1 else None}
                   if c == "chip" else {}),
            }
            for c, errs in sorted(sizing.items())
        },
        # which parts: to look at them (``magspect synth`` regenerates any part from its seed)
        "escaped_parts": [o.part_id for o in ev.outcomes
                          if o.true_verdict != Verdict.PASS and o.verdict == Verdict.PASS],
        "false_rejected_parts": [o.part_id for o in ev.outcomes
                                 if o.true_verdict == Verdict.PASS and o.verdict == Verdict.REJECT],
        "reviewed_parts": [o.part_id for o in ev.outcomes if o.verdict == Verdict.REVIEW],
        # what the look-alike verifier dropped: "real" ones touched a truth defect (sensitivity lost)
        "verifier_dismissed": dismissed,
        # what the off-part check dropped (crack calls whose line runs on past the outline), by truth
        "off_part_dismissed": off_part,
        # found coating flaws judged by a lenient kind only (pit, stain: the subtype classifier's
        # relief), by truth kind in the part's spec: "strict" relieved ones are the classifier's
        # mistakes that can let a part pass (should be 0)
        "coating_flaw_subtypes_relieved": {k: {"n": len(v), "relieved": int(sum(v))}
                                           for k, v in subtype_relief.items()},
        "metrology": {
            f"{spec}/{name}": {
                "n": len(errs),
                "unit": metro_unit[(spec, name)],  # mm, or deg for *_deg
                "bias": float(np.mean(errs)),
                "sigma": float(np.std(errs, ddof=1)) if len(errs) > 1 else None,
            }
            for (spec, name), errs in sorted(metro_err.items())
        },
        "errors": sum(o.inspection.result.error is not None for o in ev.outcomes),
        "model": inspector.model_ref.model_dump(),
        "median_stage_ms": {
            k: statistics.median(o.inspection.result.timings_ms.get(k, 0.0) for o in ev.outcomes)
            for k in ("decode", "metrology", "model", "defects", "gate", "total")
        }
        if ev.outcomes
        else {},
    }
    ev.summary = summary
    return ev


def per_spec_rates(outcomes: Iterable[PartOutcome]) -> dict[str, dict[str, float | int]]:
    """:func:`~magspect.inspect.metrics.part_rates` (without the confusion matrix) for each spec among
    ``outcomes``, in spec order."""
    by_spec: dict[str, list[PartOutcome]] = defaultdict(list)
    for o in outcomes:
        by_spec[o.spec_id].append(o)
    out: dict[str, dict[str, float | int]] = {}
    for spec_id, os_ in sorted(by_spec.items()):
        r = part_rates([o.true_verdict for o in os_], [o.verdict for o in os_])
        out[spec_id] = {k: v for k, v in r.items() if k not in ("confusion", "accuracy")}
    return out


#: Found defects of a class needed before its sizing uncertainty is stated.
MIN_SIZING_N = 20


def _robust_sigma(x: Iterable[float]) -> float:
    a = np.asarray(list(x), float)
    return float(1.4826 * np.median(np.abs(a - np.median(a)))) if a.size else float("nan")


def size_uncertainty_px(errors_px: Iterable[float]) -> float | None:
    """Expanded uncertainty (px) of a model's defect sizes from their errors against the truth:
    |median error| + 2 robust sigma (1.4826 MAD), rounded up to 0.1 px. The bias is not corrected
    but added, as GUM's SUMU does; the robust sigma keeps a defect found in two pieces from
    swamping the figure. None with fewer than :data:`MIN_SIZING_N` errors."""
    a = np.asarray(list(errors_px), float)
    if a.size < MIN_SIZING_N:
        return None
    u = abs(float(np.median(a))) + 2.0 * _robust_sigma(a)
    return float(np.ceil(u * 10.0 - 1e-9) / 10.0)


def _matching_report(instance: np.ndarray, class_name: str, reported: Iterable[Any], view: str) -> Any:
    """The reported defect of ``class_name`` in ``view`` whose box holds most of the truth
    ``instance``'s pixels (bool mask), or None."""
    best, best_n = None, 0
    for r in reported:
        if r.view != view or r.class_name != class_name or r.bbox_xyxy_px is None:
            continue
        x0, y0, x1, y1 = (int(round(c)) for c in r.bbox_xyxy_px)
        n = int(instance[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2].sum())
        if n > best_n:
            best, best_n = r, n
    return best


#: The figures a model registry keeps per synthetic suite (champion/challenger comparisons).
SUITE_KEEP = ("n_parts", "n_nonconforming", "escape_rate", "false_reject_rate", "review_rate",
              "false_defects_per_100_parts", "iou_per_class", "defect_recall")


def suite_key(n: int, suite: str = "magsynth-v2") -> str:
    return f"{suite}/test[:{n}]"


def evaluate_suite_subset(model: str | Path, n: int, suite: str = "magsynth-v2") -> dict[str, dict[str, Any]]:
    """The first ``n`` test parts of a synthetic suite (with back-lit companions) through the whole
    Inspector with ``model``: ``{suite_key: figures}`` as the model registry stores them."""
    from magspect.datasets import get_suite

    parts = get_suite(suite).iter_parts("test", limit=n, backlight=True)
    ev = evaluate_parts(Inspector(model), parts)
    return {suite_key(n, suite): {k: ev.summary[k] for k in SUITE_KEEP if k in ev.summary}}


def defect_probability(logits: np.ndarray) -> np.ndarray:
    """Per-pixel probability that a pixel is any defect class (softmax over the class axis)."""
    m = logits.max(axis=0, keepdims=True)
    e = np.exp(logits - m)
    p = e / e.sum(axis=0, keepdims=True)
    return p[[CLASS_NAMES.index(c) for c in DEFECT_CLASSES]].sum(axis=0)


def evaluate_labelled(
    segmenter: Any, folder: Any, *, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Image-level defect AUROC and per-class pixel IoU on a real labelled folder.

    The image score is the 99.9th percentile of the per-pixel defect probability (robust to a
    single hot pixel). Background and good surface are merged into ``no_defect`` for IoU, since
    real close-up photographs show surface only.
    """
    names = ("no_defect", *DEFECT_CLASSES)
    acc = ConfusionAccumulator(len(names))
    scores: list[float] = []
    labels: list[bool] = []
    to4 = np.array([0, 0, 1, 2, 3], np.uint8)  # magspect class id -> merged id
    t0 = time.perf_counter()
    for i in range(len(folder)):
        image, mask = folder.load(i)
        logits = segmenter.logits([image])[0]
        pred = logits.argmax(axis=0).astype(np.uint8)
        acc.add(to4[mask], to4[pred])
        scores.append(float(np.percentile(defect_probability(logits), 99.9)))
        labels.append(bool((mask >= CLASS_NAMES.index("crack")).any()))  # from the mask: any layout
        if progress:
            progress(i)
    iou = acc.iou()
    present = [k for k in range(len(names)) if acc.matrix[k].sum() > 0]
    from magspect.inspect.metrics import auroc

    return {
        "n_images": len(folder),
        "n_defective": int(sum(labels)),
        "image_auroc": auroc(scores, labels),
        "iou_per_class": {n: (None if np.isnan(iou[k]) else float(iou[k])) for k, n in enumerate(names)},
        "mean_iou": float(np.nanmean([iou[k] for k in present])) if present else None,
        "images_per_s": len(folder) / max(time.perf_counter() - t0, 1e-9),
        "warnings": list(folder.warnings),
    }
