"""Shared by the length benchmarks: a view's true defects of one class beside what ``measure_defects``
reads on the generator's own class mask (a perfect segmenter: what is left of the error is the
measurement's, not the model's)."""

from __future__ import annotations

from typing import Any


def on_truth_mask(rv: Any, spec_id: str, view: str, class_name: str) -> tuple[list[dict], list[Any]]:  # noqa: ANN401
    """``(truth, measured)``: the view's truth records of ``class_name`` and the defects of that class
    measured on its truth class mask (metrology on its back-lit image); ``([], [])`` when it has none."""
    from magspect.inspect.defect_measure import measure_defects
    from magspect.inspect.metrology import measure_view

    truth = [d for d in rv.truth["defects"] if d["class_name"] == class_name]
    if not truth:
        return [], []
    met = measure_view(rv.backlight, spec_id, view, float(rv.truth["um_per_px"]))
    return truth, [d for d in measure_defects(rv.class_mask, met, spec_id) if d.class_name == class_name]
