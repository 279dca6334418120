"""``benchmarks/bench_pod.py``'s contrast measure: a line the image shows scores high, one it does not
scores at the noise, and a defect without good surface around it has no score."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_path = Path(__file__).parents[3] / "benchmarks" / "bench_pod.py"
_spec = importlib.util.spec_from_file_location("bench_pod", _path)
bench_pod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_pod)


def _surface(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(120 + rng.normal(0, 4, (96, 96)), 0, 255)


def test_a_visible_line_stands_out_and_an_invisible_one_does_not():
    mask = np.zeros((96, 96), bool)
    mask[48, 20:76] = True  # a one-pixel crack
    good = ~mask
    dark = _surface()
    dark[mask] -= 40  # ten times the texture's sigma
    faint = _surface()  # nothing drawn: only texture under the mask
    dark8 = dark.astype(np.uint8)
    snr_dark = bench_pod.contrast_snr(dark8, mask, good)
    snr_faint = bench_pod.contrast_snr(faint.astype(np.uint8), mask, good)
    assert snr_dark > 6 and snr_faint < 3
    # 16-bit images are scaled to the same [0, 1] range: the same picture, the same score
    dark16 = dark8.astype(np.uint16) * 257
    assert abs(bench_pod.contrast_snr(dark16, mask, good) - snr_dark) < 0.01 * snr_dark


def test_no_good_surface_around_the_defect_gives_no_score():
    mask = np.zeros((96, 96), bool)
    mask[40:56, 40:56] = True
    assert np.isnan(bench_pod.contrast_snr(_surface().astype(np.uint8), mask, np.zeros_like(mask)))
