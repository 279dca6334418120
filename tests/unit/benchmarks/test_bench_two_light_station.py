"""``benchmarks/bench_two_light_station.py``: how two lights' verdicts combine, and the rates of each set-up."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_path = Path(__file__).parents[3] / "benchmarks" / "bench_two_light_station.py"
_spec = importlib.util.spec_from_file_location("bench_two_light_station", _path)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.mark.parametrize("a,b,worst,agree", [
    ("PASS", "PASS", "PASS", "PASS"),
    ("PASS", "REJECT", "REJECT", "REVIEW"),
    ("REVIEW", "PASS", "REVIEW", "REVIEW"),
    ("REJECT", "REVIEW", "REJECT", "REVIEW"),
    ("REJECT", "REJECT", "REJECT", "REJECT"),
])
def test_combine(a, b, worst, agree):
    assert bench._combine(a, b, "worst") == worst and bench._combine(b, a, "worst") == worst
    assert bench._combine(a, b, "agree") == agree


def test_merged_slices_give_each_set_ups_rates(tmp_path, capsys):
    rows = [  # two bad parts: the first light misses one, the second the other; one good part the second rejects
        {"part": "a", "truth": "REJECT", "first": "PASS", "second": "REJECT"},
        {"part": "b", "truth": "REJECT", "first": "REJECT", "second": "PASS"},
        {"part": "c", "truth": "PASS", "first": "PASS", "second": "REJECT"},
        {"part": "d", "truth": "PASS", "first": "PASS", "second": "PASS"},
    ]
    for i, chunk in enumerate((rows[:2], rows[2:])):
        (tmp_path / f"{i}.json").write_text(json.dumps({"parts": chunk}))
    bench._table([r for i in range(2) for r in json.loads((tmp_path / f"{i}.json").read_text())["parts"]])
    out = capsys.readouterr().out
    assert "4 parts, 2 truly nonconforming" in out
    assert "| first light alone | 50.00 % (1) | 0.0 % (0) | 0.0 % |" in out
    assert "| second light alone | 50.00 % (1) | 50.0 % (1) | 0.0 % |" in out
    assert "| both, worst verdict | 0.00 % (0) | 50.0 % (1) | 0.0 % |" in out
    assert "| both, REVIEW where they differ | 0.00 % (0) | 0.0 % (0) | 75.0 % |" in out
