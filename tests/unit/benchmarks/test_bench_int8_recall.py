"""``benchmarks/bench_int8_recall.py``: lost and gained defects counted pairwise, the recall points
from their difference, and the report's rows from hand-made tallies."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_path = Path(__file__).parents[3] / "benchmarks" / "bench_int8_recall.py"
_spec = importlib.util.spec_from_file_location("bench_int8_recall", _path)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_int8_recall"] = bench  # dataclasses look their module up there
_spec.loader.exec_module(bench)


def test_lost_and_gained_are_counted_defect_by_defect():
    fp32 = [True, True, True, False, False, True, True, True, True, True]
    int8 = [True, False, True, True, False, False, True, True, True, True]
    lost, gained, points = bench.recall_lost_points(fp32, int8)
    assert (lost, gained) == (2, 1)  # defects 1 and 5 lost, defect 3 gained
    assert points == pytest.approx(10.0)  # net one of ten


def test_the_same_recall_by_different_defects_is_not_zero_loss():
    lost, gained, points = bench.recall_lost_points([True, False], [False, True])
    assert (lost, gained, points) == (1, 1, 0.0)


def test_lists_of_different_defects_are_refused():
    with pytest.raises(ValueError, match="different defects"):
        bench.recall_lost_points([True], [True, False])


def test_report_rows():
    ref, other = bench.Tally(), bench.Tally()
    ref.found = {"crack": [True, True, False], "chip": [True], "coating_flaw": [True, True]}
    other.found = {"crack": [True, False, False], "chip": [True], "coating_flaw": [True, True]}
    ref.agree_px = ref.total_px = 100
    other.agree_px, other.total_px = 99, 100
    other.nuisances_called = 3
    text = bench.report({"a.onnx": ref, "b.onnx": other}, "a.onnx", n_nuisances=7)
    rows = text.splitlines()
    assert "crack of 3 / chip of 1 / coating_flaw of 2" in rows[0] and "(of 7)" in rows[0]
    assert rows[2] == "| a.onnx (FP32) | 2 / 1 / 2 | 0 | 0 | +0.00 | 100.000 % | 0 |"
    assert rows[3] == "| b.onnx | 1 / 1 / 2 | 1 | 0 | +16.67 | 99.000 % | 3 |"
