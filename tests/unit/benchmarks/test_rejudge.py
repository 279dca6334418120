"""``benchmarks/_rejudge.py``'s ``inspect_split``: the first N parts of a split, filtered to one
spec and lit one way when asked."""

from __future__ import annotations

import sys
from pathlib import Path

from magspect.datasets import generate_part, get_suite
from magspect.inspect.inspector import Inspector

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))
from _rejudge import inspect_split  # noqa: E402


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
