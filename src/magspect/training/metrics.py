"""Validation metrics: per-class pixel IoU and per-class instance recall/precision.

Instances are 8-connected components of each defect class in the truth and in the prediction. A
truth instance is *found* when any predicted pixel of its class overlaps it; a predicted instance
(at least ``min_area_px`` pixels) is *true* when it overlaps a truth pixel of its class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from magspect.types import CLASS_IDS, CLASS_NAMES, DEFECT_CLASSES

IGNORE_ID = 255  # magspect.training.data.IGNORE_ID


@dataclass
class SegMetrics:
    num_classes: int = len(CLASS_NAMES)
    min_area_px: int = 4
    confusion: np.ndarray = field(init=False)
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECT_CLASSES, 0))
    truths: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECT_CLASSES, 0))
    true_preds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECT_CLASSES, 0))
    preds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DEFECT_CLASSES, 0))

    def __post_init__(self) -> None:
        self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, pred: np.ndarray, truth: np.ndarray) -> None:
        """Add one HxW predicted class mask and its truth (pixels labelled 255 are not scored)."""
        if pred.shape != truth.shape:
            raise ValueError(f"shape mismatch {pred.shape} vs {truth.shape}")
        k = self.num_classes
        ignore = truth == IGNORE_ID
        if ignore.any():  # a prediction on an unlabelled pixel is neither right nor wrong
            keep = ~ignore
            pred = np.where(keep, pred, 0).astype(pred.dtype)
            idx = truth[keep].astype(np.int64) * k + pred[keep].astype(np.int64)
        else:
            idx = truth.astype(np.int64).ravel() * k + pred.astype(np.int64).ravel()
        self.confusion += np.bincount(idx, minlength=k * k).reshape(k, k)
        for name in DEFECT_CLASSES:
            c = CLASS_IDS[name]
            t, p = (truth == c).astype(np.uint8), (pred == c).astype(np.uint8)
            nt, lt = cv2.connectedComponents(t, connectivity=8)
            if nt > 1:
                hit = np.unique(lt[p.astype(bool)])
                self.found[name] += int(np.count_nonzero(hit))
                self.truths[name] += nt - 1
            n_p, lp, stats, _ = cv2.connectedComponentsWithStats(p, connectivity=8)
            if n_p > 1:
                big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= self.min_area_px) + 1
                hit_p = set(np.unique(lp[t.astype(bool)]).tolist())
                self.preds[name] += len(big)
                self.true_preds[name] += sum(1 for j in big if int(j) in hit_p)

    def iou(self) -> dict[str, float]:
        cm = self.confusion
        tp = np.diag(cm).astype(np.float64)
        denom = cm.sum(0) + cm.sum(1) - tp
        return {name: float(tp[i] / denom[i]) if denom[i] > 0 else float("nan") for i, name in enumerate(CLASS_NAMES)}

    def summary(self) -> dict[str, float]:
        """Flat dict: ``iou/<class>``, ``miou_defects``, ``recall/<class>``, ``precision/<class>``."""
        out: dict[str, float] = {}
        ious = self.iou()
        for name, v in ious.items():
            out[f"iou/{name}"] = v
        d = [ious[n] for n in DEFECT_CLASSES if not np.isnan(ious[n])]
        out["miou_defects"] = float(np.mean(d)) if d else float("nan")
        for name in DEFECT_CLASSES:
            out[f"recall/{name}"] = self.found[name] / self.truths[name] if self.truths[name] else float("nan")
            out[f"precision/{name}"] = self.true_preds[name] / self.preds[name] if self.preds[name] else float("nan")
            out[f"n_truth/{name}"] = float(self.truths[name])
            out[f"n_pred/{name}"] = float(self.preds[name])
        out["pixel_accuracy"] = float(np.trace(self.confusion) / max(self.confusion.sum(), 1))
        return out
