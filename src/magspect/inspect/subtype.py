"""Coating-flaw subtypes from shape, where shape alone can tell.

The model segments three defect classes; specs judge coating flaws by subtype (a pit may be
allowed where a blister never is). Shape tells one subtype apart reliably: a scratch is long and
thin. Everything else keeps ``subtype=None``, which the gate judges as the strictest subtype it
could be: a false reject, never an escape.

A small round flaw is *not* read as a pit: a small blister or rust spot has the same outline, and
every spec allows none of those. Read as a pit (up to 0.2-0.5 mm allowed), it passed them: on 500
magsynth-v2 validation parts 4 of 12 escapes were such spots, where judging them as the strictest
subtype costs 6 more false rejects among 219 conforming parts (BENCHMARKS.md). A pit can only be
told from a blister by how it looks (a dark hole, not a raised bump), which needs a model that
segments subtypes.
"""

from __future__ import annotations

from magspect.types import Defect

SCRATCH_MIN_ASPECT = 4.0  # length / width
SCRATCH_MAX_WIDTH_MM = 0.2


def infer_coating_subtype(d: Defect) -> Defect:
    """The defect with its coating-flaw subtype filled in where shape decides it (scratches)."""
    if d.class_name != "coating_flaw" or d.subtype is not None:
        return d
    width = max(d.width_mm, 1e-6)
    if d.length_mm / width >= SCRATCH_MIN_ASPECT and d.width_mm <= SCRATCH_MAX_WIDTH_MM:
        return d.model_copy(update={"subtype": "scratch"})
    return d
