"""``benchmarks/_rejudge.py``'s ``inspect_split``: the first N parts of a split, filtered to one
spec and lit one way when asked; ``replay``: what an evaluation's parts are inspected again with."""

from __future__ import annotations

import sys
from pathlib import Path

from magspect.datasets import generate_part, get_suite
from magspect.inspect.inspector import Inspector

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
from _rejudge import inspect_split, replay  # noqa: E402


def test_inspect_split_filters_by_spec_and_lights_one_way(const_model):
    insp = Inspector(const_model, verifier=False, subtypes=False, threads=1)
    first = get_suite("magsynth-v2").parts("val", 6)
    spec = first[0][0]
    judged = list(inspect_split(insp, "val", 6, spec=spec, lighting="darkfield"))
    assert len(judged) == sum(s == spec for s, _ in first) >= 1
    for j in judged:
        assert j.spec.id == spec
        assert set(j.inspection.views) == {"top", "side"}
    # the views inspected are the dark-field renders of the same part
    suite = get_suite("magsynth-v2")
    lit = generate_part(spec, first[0][1], suite.config("val", light="darkfield"))
    assert lit.views["top"].truth["lighting"] == "darkfield"
    assert (judged[0].inspection.views["top"].image == lit.views["top"].image).all()
    assert len(list(inspect_split(insp, "val", 6))) == 6


def test_replay_takes_the_evaluations_lighting_and_verifier():
    import pytest

    from magspect.inspect.backend import sha256_file
    from magspect.inspect.verifier import bundled_verifier_path

    dark = bundled_verifier_path("darkfield")
    ev = {"suite": "magsynth-v2", "split": "test", "lighting": "darkfield", "verifier": {"sha256": sha256_file(dark)}}
    cfg, verifier = replay(ev)
    assert cfg.lighting == ("darkfield",) and verifier == dark
    cfg, verifier = replay({**ev, "lighting": "suite", "verifier": {"sha256": sha256_file(bundled_verifier_path())}})
    assert cfg == get_suite("magsynth-v2").config("test") and verifier == bundled_verifier_path()
    assert replay({**ev, "verifier": None})[1] is False  # evaluated without a verifier
    with pytest.raises(SystemExit, match="--verifier FILE"):
        replay({**ev, "verifier": {"sha256": "0" * 64}})
    assert replay({**ev, "verifier": {"sha256": "0" * 64}}, "mine.onnx")[1] == "mine.onnx"
