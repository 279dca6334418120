"""Coating-flaw subtypes from shape, where shape alone can tell.

The model segments three defect classes; specs judge coating flaws by subtype (a pit may be
allowed where a blister never is). Shape tells two subtypes apart reliably: a scratch is long and
thin, a pit is small and round. Everything else (blister, peel, rust, stain) keeps ``subtype=None``,
which the gate judges as the strictest subtype it could be: a false reject, never an escape.
"""

from __future__ import annotations

from magspect.types import Defect

SCRATCH_MIN_ASPECT = 4.0  # length / width
SCRATCH_MAX_WIDTH_MM = 0.2
PIT_MAX_EXTENT_MM = 0.6
PIT_MAX_ASPECT = 2.0


def infer_coating_subtype(d: Defect) -> Defect:
    """The defect with its coating-flaw subtype filled in where shape decides it."""
    if d.class_name != "coating_flaw" or d.subtype is not None:
        return d
    width = max(d.width_mm, 1e-6)
    aspect = d.length_mm / width
    if aspect >= SCRATCH_MIN_ASPECT and d.width_mm <= SCRATCH_MAX_WIDTH_MM:
        return d.model_copy(update={"subtype": "scratch"})
    if d.length_mm <= PIT_MAX_EXTENT_MM and aspect <= PIT_MAX_ASPECT:
        return d.model_copy(update={"subtype": "pit"})
    return d
