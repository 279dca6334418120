"""``benchmarks/bench_crack_lengths.py``: per-subtype crack counts from the generator's plans, and the
parts two suites draw differently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_path = Path(__file__).parents[3] / "benchmarks" / "bench_crack_lengths.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(_path), *args], capture_output=True, text=True, timeout=300)


def test_v2_face_cracks_start_at_an_edge_and_v3_differs_only_where_one_is_drawn():
    r = _run("--suite", "magsynth-v2", "magsynth-v3", "--split", "test", "--n", "150")
    assert r.returncode == 0, r.stderr
    v2, v3 = r.stdout.split("magsynth-v3 test")
    face_v2 = next(line for line in v2.splitlines() if line.startswith("| face_crack |"))
    face_v3 = next(line for line in v3.splitlines() if line.startswith("| face_crack |"))
    assert face_v2.endswith("| edge " + face_v2.split("|")[2].strip() + " |")  # every one at an edge
    assert "edge" not in face_v3.split("|")[-2]  # on the faces
    alike = next(line for line in v3.splitlines() if line.startswith("parts drawn alike"))
    n_alike, rest = alike.split(": ")[1].split(" of 150; of the ")
    n_differ, n_face = int(rest.split(" that differ, ")[0]), int(rest.split(" that differ, ")[1].split()[0])
    assert int(n_alike) + n_differ == 150 and 0 < n_differ <= n_face + 1


def test_more_than_two_suites_refused():
    r = _run("--suite", "magsynth-v1", "magsynth-v2", "magsynth-v3")
    assert r.returncode == 2 and "one suite or two" in r.stderr


def test_a_parts_cracks_in_both_suites():
    r = _run("--suite", "magsynth-v2", "magsynth-v3", "--part", "ev-arc-r30-r25-40deg-s2000344")
    assert r.returncode == 0, r.stderr
    v2, v3 = r.stdout.splitlines()
    assert "magsynth-v2: side face_crack at edge, 0.05 mm long" in v2  # a 2 px speck at the outline
    assert "magsynth-v3: side face_crack at pole_face, 4.25 mm long" in v3


def test_crack_pieces_and_lengths_on_the_truth_masks():
    r = _run("--suite", "magsynth-v3", "--split", "val", "--pieces", "1")
    assert r.returncode == 0, r.stderr
    first, _, truth = r.stdout.splitlines()
    assert first.startswith("1 parts of magsynth-v3/val holding a crack:")
    ratio = float(truth.split("/ true ")[1].split()[0])
    assert 0.5 < ratio <= 1.05  # measured on the generator's own mask: close to the truth, never far over
