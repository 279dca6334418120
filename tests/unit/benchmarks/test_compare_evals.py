"""``benchmarks/compare_evals.py``: counts read back from the evaluate JSON, part changes both ways,
and evaluations of different parts refused."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

_path = Path(__file__).parents[3] / "benchmarks" / "compare_evals.py"
_spec = importlib.util.spec_from_file_location("compare_evals", _path)
cmp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cmp)


def _ev(escaped, rejected, crack_found, sha="a" * 64, n_parts=10):
    return {"suite": "magsynth-v2", "split": "test", "n_parts": n_parts, "n_nonconforming": 4, "n_conforming": 6,
            "escape_rate": len(escaped) / 4, "false_reject_rate": len(rejected) / 6, "review_rate": 0.1,
            "escaped_parts": escaped, "false_rejected_parts": rejected,
            "defect_recall": {"crack": {"at_or_above_limit": {"n": 3, "recall": crack_found / 3}},
                              "chip": {"at_or_above_limit": {"n": 0, "recall": None}},
                              "coating_flaw": {"at_or_above_limit": {"n": 2, "recall": 1.0}}},
            "false_defects_on_nuisances_per_100_parts": 12.5, "model": {"sha256": sha}}


def test_table_and_changes(tmp_path):
    base = _ev(["p1"], ["g1", "g2"], crack_found=2)
    cand = _ev(["p2"], ["g2"], crack_found=1, sha="b" * 64)
    text = cmp.table({"base": base, "cand": cand})
    assert "| escape rate | 25.00 % (1) | 25.00 % (1) |" in text
    assert "| false rejects | 33.33 % (2 of 6) | 16.67 % (1 of 6) |" in text
    assert "| rejectable crack found | 2 of 3 | 1 of 3 |" in text
    assert "| rejectable chip found | 0 of 0 | 0 of 0 |" in text
    assert "| rejectable found, all classes | 4 of 5 | 3 of 5 |" in text
    assert "| model sha256 | aaaaaaaaaaaa | bbbbbbbbbbbb |" in text
    assert "face_crack" not in text  # files from before the per-kind figures
    cand["rejectable_recall_by_kind"] = {"crack/face_crack": {"n": 2, "recall": 0.5}}
    assert "| rejectable crack/face_crack found | - | 1 of 2 |" in cmp.table({"base": base, "cand": cand})
    assert cmp.part_changes(base, cand) == {"escapes added": ["p2"], "escapes removed": ["p1"],
                                            "false rejects added": [], "false rejects removed": ["g1"]}
    # evaluations that list their REVIEW parts (nineteenth session on) show those changes too
    base["reviewed_parts"], cand["reviewed_parts"] = ["r1", "g1"], ["r1", "p1"]
    changes = cmp.part_changes(base, cand)
    assert changes["reviews added"] == ["p1"] and changes["reviews removed"] == ["g1"]


def test_evaluations_of_different_parts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="same parts"):
        cmp.check_same_parts({"a": _ev([], [], 3), "b": _ev([], [], 3, n_parts=11)})
    (tmp_path / "a.json").write_text(json.dumps(_ev([], [], 3)))
    (tmp_path / "b.json").write_text(json.dumps(_ev([], [], 3, n_parts=11)))
    res = subprocess.run([sys.executable, str(_path), str(tmp_path / "a.json"), str(tmp_path / "b.json")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "not evaluations of the same parts" in res.stderr
