"""``benchmarks/bench_verifier_thresholds.py``'s last table: each verifier's best trades, so that two
verifiers are compared at equal escapes and not at equal cuts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_path = Path(__file__).parents[3] / "benchmarks" / "bench_verifier_thresholds.py"
_spec = importlib.util.spec_from_file_location("bench_verifier_thresholds", _path)
bvt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bvt)
Point = bvt.Point


def _rows(out: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| ") and not line.startswith("| verifier")]


def test_frontier_keeps_each_verifiers_undominated_points_within_the_review_cap(capsys):
    points = [
        Point(0, 0.05, None, 0.03, 0.25, 0.02),
        Point(0, 0.05, 0.08, 0.03, 0.20, 0.04),  # same escapes, fewer false rejects: replaces the one above
        Point(0, 0.08, None, 0.04, 0.22, 0.02),  # more escapes and more false rejects: dominated, left out
        Point(0, 0.08, 0.12, 0.04, 0.15, 0.06),  # over the review cap, left out
        Point(0, 0.12, None, 0.05, 0.12, 0.03),
        Point(1, 0.03, None, 0.03, 0.21, 0.02),  # the second verifier's own points, judged apart
    ]
    bvt._frontier_table(points, ["a.onnx", "b.onnx"], max_reviews=0.05)
    rows = _rows(capsys.readouterr().out)
    assert rows == [
        ["a.onnx", "0.050", "0.080", "0.030", "0.200", "0.040"],
        ["a.onnx", "0.120", "—", "0.050", "0.120", "0.030"],
        ["b.onnx", "0.030", "—", "0.030", "0.210", "0.020"],
    ]


def test_frontier_with_a_looser_review_cap_admits_the_point_it_left_out(capsys):
    points = [Point(0, 0.05, 0.08, 0.03, 0.20, 0.04), Point(0, 0.08, 0.12, 0.04, 0.15, 0.06)]
    bvt._frontier_table(points, ["a.onnx"], max_reviews=0.1)
    assert [r[1:3] for r in _rows(capsys.readouterr().out)] == [["0.050", "0.080"], ["0.080", "0.120"]]
