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


def test_report_counts_the_misses_a_lower_threshold_would_catch_and_the_nuisances_it_would_call():
    def defect(found, called, p_max, snr):
        return {"kind": "defect", "class": "crack", "subtype": "face_crack", "part": "p", "view": "top",
                "lighting": "dome", "length_mm": 1.0, "rejectable": True, "found": found, "called": called,
                "p_max": p_max, "snr": snr}

    rows = [defect(True, True, 0.9, 8.0), defect(False, True, 0.4, 3.0),  # found; called as another class
            defect(False, False, 0.12, 2.5), defect(False, False, 0.03, 1.0),  # nothing called on them
            {"kind": "lint", "lighting": "dome", "found": True, "p_max": 0.7},
            {"kind": "lint", "lighting": "dome", "found": False, "p_max": 0.15},
            {"kind": "dust", "lighting": "dome", "found": False, "p_max": 0.02}]
    text = bench_pod.report(rows, lower=(0.1, 0.01))
    assert "missed rejectable defects (3; 1 of them called a defect of another class" in text
    assert sum(line.startswith("* ") for line in text.splitlines()) == 1
    assert "nuisances with a defect called 1 of 3" in text
    assert "p >= 0.1: missed with no defect called 1 of 2; nuisances reaching it 2 of 3" in text
    assert "p >= 0.01: missed with no defect called 2 of 2; nuisances reaching it 3 of 3" in text
