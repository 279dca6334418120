"""Accuracy figures, numpy only: part-level rates against the truth gate, defect recall, AUROC, IoU."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from magspect.types import CLASS_NAMES, DEFECT_CLASSES, Verdict


def part_rates(true_verdicts: Sequence[Verdict], verdicts: Sequence[Verdict]) -> dict[str, float | int | dict]:
    """Escape, false-reject and review rates (fractions), their counts and the confusion matrix.

    A part is truly nonconforming when the truth gate does not pass it. ``escape_rate`` is the share
    of truly nonconforming parts judged PASS; ``false_reject_rate`` the share of truly conforming parts
    judged REJECT; ``review_rate`` the share of all parts sent to REVIEW.
    """
    if len(true_verdicts) != len(verdicts):
        raise ValueError("true_verdicts and verdicts differ in length")
    t = [Verdict(v) for v in true_verdicts]
    p = [Verdict(v) for v in verdicts]
    bad = [i for i, v in enumerate(t) if v != Verdict.PASS]
    good = [i for i, v in enumerate(t) if v == Verdict.PASS]
    n = len(t)
    confusion = {tv.value: {pv.value: 0 for pv in Verdict} for tv in Verdict}
    for tv, pv in zip(t, p, strict=True):
        confusion[tv.value][pv.value] += 1
    escapes = sum(p[i] == Verdict.PASS for i in bad)
    false_rejects = sum(p[i] == Verdict.REJECT for i in good)
    reviews = sum(v == Verdict.REVIEW for v in p)
    return {
        "n_parts": n,
        "n_nonconforming": len(bad),
        "n_conforming": len(good),
        "escapes": escapes,
        "false_rejects": false_rejects,
        "reviews": reviews,
        "escape_rate": (escapes / len(bad)) if bad else 0.0,
        "false_reject_rate": (false_rejects / len(good)) if good else 0.0,
        "review_rate": (reviews / n) if n else 0.0,
        "accuracy": (sum((tv == Verdict.PASS) == (pv == Verdict.PASS) for tv, pv in zip(t, p, strict=True)) / n)
        if n
        else 0.0,
        "confusion": confusion,
    }


def auroc(scores: Sequence[float], labels: Sequence[int | bool]) -> float:
    """Area under the ROC curve (Mann-Whitney U with ties counted half). NaN if one class is absent."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


class ConfusionAccumulator:
    """Pixel confusion matrix accumulated over images; IoU per class."""

    def __init__(self, n_classes: int = len(CLASS_NAMES)) -> None:
        self.n = n_classes
        self.matrix = np.zeros((n_classes, n_classes), np.int64)  # [true, predicted]

    def add(self, true_mask: np.ndarray, pred_mask: np.ndarray) -> None:
        if true_mask.shape != pred_mask.shape:
            raise ValueError(f"mask shapes differ: truth {true_mask.shape}, prediction {pred_mask.shape}")
        idx = true_mask.astype(np.int64).ravel() * self.n + pred_mask.astype(np.int64).ravel()
        self.matrix += np.bincount(idx, minlength=self.n * self.n).reshape(self.n, self.n)

    def iou(self) -> np.ndarray:
        tp = np.diag(self.matrix).astype(np.float64)
        denom = self.matrix.sum(0) + self.matrix.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)


def instance_recall(
    truth_instances: np.ndarray,
    truth_classes: dict[int, str],
    pred_mask: np.ndarray,
    tolerance_px: int = 2,
) -> dict[int, bool]:
    """For each truth instance id: was it found (any predicted pixel of its class within ``tolerance_px``)?"""
    found: dict[int, bool] = {}
    kernel = np.ones((2 * tolerance_px + 1, 2 * tolerance_px + 1), np.uint8)
    for iid, cls in truth_classes.items():
        region = (truth_instances == iid).astype(np.uint8)
        if tolerance_px:
            region = cv2.dilate(region, kernel)
        found[iid] = bool((pred_mask[region.astype(bool)] == CLASS_NAMES.index(cls)).any())
    return found


def _near_truth_defect(truth_mask: np.ndarray, tolerance_px: int) -> np.ndarray:
    """Bool mask: within ``tolerance_px`` of a truth defect pixel of any class."""
    k = 2 * tolerance_px + 1
    defects = np.isin(truth_mask, [CLASS_NAMES.index(c) for c in DEFECT_CLASSES]).astype(np.uint8)
    return cv2.dilate(defects, np.ones((k, k), np.uint8)).astype(bool)


def false_detections(
    truth_mask: np.ndarray, pred_mask: np.ndarray, tolerance_px: int = 2, min_area_px: int = 4
) -> dict[str, int]:
    """Predicted defect components (per class) that touch no truth defect of any class."""
    truth_def = _near_truth_defect(truth_mask, tolerance_px)
    out: dict[str, int] = {}
    for c in DEFECT_CLASSES:
        m = (pred_mask == CLASS_NAMES.index(c)).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        count = 0
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < min_area_px:
                continue
            if not truth_def[lab == k].any():
                count += 1
        out[c] = count
    return out


#: Where a false defect lies, when it lies on no recorded nuisance: near the part's outline (chamfers,
#: edge shading), on the part's surface, or off the part (fixture, background).
FALSE_CAUSES_OTHER = ("outline", "surface", "off_part")


def _boxes_overlap(a: Sequence[float], b: Sequence[float], pad: float) -> bool:
    return a[0] - pad < b[2] and b[0] - pad < a[2] and a[1] - pad < b[3] and b[1] - pad < a[3]


def reported_defect_causes(
    reported: Sequence[Sequence[float]],
    truth_mask: np.ndarray,
    nuisances: Sequence[dict] = (),
    tolerance_px: int = 2,
    outline_band_px: int = 6,
) -> list[str | None]:
    """For each *reported* defect (pixel box ``x0, y0, x1, y1``): ``None`` if it touches a truth
    defect (within ``tolerance_px``), else the cause of the false call: the kind of the recorded
    nuisance its box overlaps (dust, lint, water_spot, ...), else ``outline`` (within
    ``outline_band_px`` of the part's edge), ``surface`` or ``off_part``."""
    h, w = truth_mask.shape[:2]
    defects = _near_truth_defect(truth_mask, tolerance_px)
    part = (truth_mask > 0).astype(np.uint8)
    kb = 2 * outline_band_px + 1
    band = (cv2.dilate(part, np.ones((kb, kb), np.uint8)) - cv2.erode(part, np.ones((kb, kb), np.uint8))).astype(bool)
    causes: list[str | None] = []
    for box in reported:
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(w, int(np.ceil(box[2])) + 1), min(h, int(np.ceil(box[3])) + 1)
        if x1 <= x0 or y1 <= y0 or defects[y0:y1, x0:x1].any():
            causes.append(None)
            continue
        kind = next((n["kind"] for n in nuisances if _boxes_overlap(box, n["bbox_xyxy_px"], tolerance_px)), None)
        if kind is None:
            if band[y0:y1, x0:x1].any():
                kind = "outline"
            elif part[y0:y1, x0:x1].any():
                kind = "surface"
            else:
                kind = "off_part"
        causes.append(kind)
    return causes


def false_reported_defects(
    reported: Sequence[Sequence[float]],
    truth_mask: np.ndarray,
    nuisances: Sequence[dict] = (),
    tolerance_px: int = 2,
    outline_band_px: int = 6,
) -> list[str]:
    """The cause of each *reported* defect that touches no truth defect (see
    :func:`reported_defect_causes`). One entry per false defect; true detections give none."""
    causes = reported_defect_causes(reported, truth_mask, nuisances, tolerance_px, outline_band_px)
    return [c for c in causes if c is not None]
