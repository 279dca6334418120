"""The registry's synthetic check: the first N test parts of a suite through the whole Inspector."""

from magspect.inspect.evaluate import SUITE_KEEP, evaluate_suite_subset, suite_key


def test_suite_subset_figures_under_their_key(const_model):
    out = evaluate_suite_subset(const_model, 2)
    assert list(out) == [suite_key(2)] == ["magsynth-v2/test[:2]"]
    figures = out["magsynth-v2/test[:2]"]
    assert set(figures) == set(SUITE_KEEP) and figures["n_parts"] == 2
    assert 0.0 <= figures["escape_rate"] <= 1.0
