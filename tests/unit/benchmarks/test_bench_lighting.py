"""``benchmarks/bench_lighting.py``: a multi-light station's verdict is the worst of its lights',
counted as ``magspect evaluate`` counts; the same part under two lights is the same part; bad
``--lights`` refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from magspect.datasets import generate_part, get_suite

_path = Path(__file__).parents[3] / "benchmarks" / "bench_lighting.py"
_spec = importlib.util.spec_from_file_location("bench_lighting", _path)
bl = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bl)


def test_worst_verdict():
    assert bl.worst(["PASS", "PASS"]) == "PASS"
    assert bl.worst(["PASS", "REVIEW"]) == "REVIEW"
    assert bl.worst(["REVIEW", "REJECT", "PASS"]) == "REJECT"


def test_rates_count_like_evaluate():
    truth = ["PASS", "PASS", "PASS", "REJECT", "REJECT"]
    r = bl.rates(truth, ["PASS", "REJECT", "REVIEW", "PASS", "REJECT"])
    assert (r["escapes"], r["false_rejects"], r["reviews"], r["n_nonconforming"]) == (1, 1, 1, 2)
    assert r["escape_rate"] == pytest.approx(0.5)
    assert r["false_reject_rate"] == pytest.approx(1 / 3)
    assert r["review_rate"] == pytest.approx(0.2)


def test_table_combines_lights_by_the_worst_verdict():
    truth = ["PASS", "REJECT", "REJECT"]
    by_light = {"dome": ["REJECT", "PASS", "PASS"], "darkfield": ["PASS", "REJECT", "PASS"]}
    rows = {r["lights"]: r for r in bl.table(truth, by_light)}
    assert list(rows) == ["dome", "darkfield", "dome+darkfield"]
    assert (rows["dome"]["escapes"], rows["dome"]["false_rejects"]) == (2, 1)
    assert (rows["darkfield"]["escapes"], rows["darkfield"]["false_rejects"]) == (1, 0)
    # the union catches what either light shows, and keeps every false call
    assert (rows["dome+darkfield"]["escapes"], rows["dome+darkfield"]["false_rejects"]) == (1, 1)


def test_per_spec_table():
    parts = [{"spec": "disc", "true_verdict": "PASS", "dome": "REJECT", "darkfield": "PASS"},
             {"spec": "disc", "true_verdict": "REJECT", "dome": "PASS", "darkfield": "REJECT"},
             {"spec": "block", "true_verdict": "PASS", "dome": "PASS", "darkfield": "PASS"}]
    lines = bl.per_spec_table(parts, ["dome", "darkfield"]).splitlines()
    assert lines[2] == "| block | 1 (0) | 0 / 0 of 1 | 0 / 0 of 1 |"
    assert lines[3] == "| disc | 2 (1) | 1 / 1 of 1 | 0 / 0 of 1 |"


def test_only_the_light_changes():
    """The benchmark's premise: one part rendered under two lightings has the same pose, defects,
    look-alikes and truth; only the images differ (and glints: only dome and coaxial light make them)."""
    suite = get_suite("magsynth-v2")
    spec_id, seed = suite.parts("val", 1)[0]
    a = generate_part(spec_id, seed, suite.config("val", light="dome", size_px=256))
    b = generate_part(spec_id, seed, suite.config("val", light="darkfield", size_px=256))
    assert a.truth["conforming"] == b.truth["conforming"] and a.truth["defects"] == b.truth["defects"]
    for v in a.views:
        ta, tb = a.views[v].truth, b.views[v].truth
        assert (ta["lighting"], tb["lighting"]) == ("dome", "darkfield")
        assert [n for n in ta["nuisances"] if n["kind"] != "glint"] == tb["nuisances"]
        assert (a.views[v].class_mask == b.views[v].class_mask).all()
        # the back-lit companion is a fresh capture (its own noise and exposure) of the same silhouette
        sil_a, sil_b = (x.views[v].backlight > x.views[v].backlight.mean() for x in (a, b))
        assert (sil_a != sil_b).mean() < 0.01
        assert not (a.views[v].image == b.views[v].image).all()


def test_bad_lights_refused(capsys):
    assert bl.main(["--lights", "dome,backlight", "--n", "1"]) == 2
    assert "--lights" in capsys.readouterr().err
    assert bl.main(["--lights", "dome,dome", "--n", "1"]) == 2
    with pytest.raises(ValueError, match="front light"):
        get_suite("magsynth-v2").config("val", light="backlight")
