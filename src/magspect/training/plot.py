"""Training curves drawn with OpenCV (no matplotlib): loss on the left, validation on the right."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

_COLOURS = [(200, 80, 30), (30, 30, 200), (30, 160, 30), (160, 30, 160), (0, 140, 200), (90, 90, 90)]


def _panel(series: dict[str, list[tuple[float, float]]], title: str, w: int, h: int, log_y: bool) -> np.ndarray:
    img = np.full((h, w, 3), 255, np.uint8)
    ml, mr, mt, mb = 60, 15, 30, 40
    pts_all = [(x, y) for s in series.values() for x, y in s if math.isfinite(y) and (y > 0 or not log_y)]
    cv2.putText(img, title, (ml, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not pts_all:
        return img
    xs = [p[0] for p in pts_all]
    ys = [math.log10(p[1]) if log_y else p[1] for p in pts_all]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    cv2.rectangle(img, (ml, mt), (w - mr, h - mb), (0, 0, 0), 1)

    def to_px(x: float, y: float) -> tuple[int, int]:
        yy = math.log10(y) if log_y else y
        px = ml + (x - x0) / (x1 - x0) * (w - ml - mr)
        py = h - mb - (yy - y0) / (y1 - y0) * (h - mt - mb)
        return int(round(px)), int(round(py))

    for frac in (0.0, 0.5, 1.0):
        yv = y0 + frac * (y1 - y0)
        label = f"{10**yv:.3g}" if log_y else f"{yv:.3g}"
        py = int(h - mb - frac * (h - mt - mb))
        cv2.putText(img, label, (2, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    for frac in (0.0, 1.0):
        xv = x0 + frac * (x1 - x0)
        px = int(ml + frac * (w - ml - mr))
        cv2.putText(img, f"{xv:.0f}", (px - 10, h - mb + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    cv2.putText(img, "step", (w // 2 - 15, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k, (name, s) in enumerate(series.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        pts = [to_px(x, y) for x, y in s if math.isfinite(y) and (y > 0 or not log_y)]
        if len(pts) > 1:
            cv2.polylines(img, [np.array(pts, np.int32)], False, colour, 1, cv2.LINE_AA)
        for p in pts if len(pts) <= 60 else []:
            cv2.circle(img, p, 2, colour, -1)
        cv2.putText(img, name, (ml + 8, mt + 15 + 14 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return img


def write_curves(path: str | Path, train: list[dict], val: list[dict], val_keys: list[str]) -> Path:
    """``train``: records with ``step`` and ``loss``; ``val``: records with ``step`` and ``val_keys``."""
    loss = {"train loss": [(r["step"], r["loss"]) for r in train]}
    vals = {k: [(r["step"], r[k]) for r in val if k in r] for k in val_keys}
    img = np.hstack([_panel(loss, "training loss (log)", 480, 320, True), _panel(vals, "validation", 480, 320, False)])
    path = Path(path)
    cv2.imwrite(str(path), img)
    return path
