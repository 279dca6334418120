"""Coating-flaw subtypes: from shape where shape alone can tell, and from how the flaw looks where a
trained classifier is sure enough.

The model segments three defect classes; specs judge coating flaws by subtype (a pit may be
allowed where a blister never is). Shape tells one subtype apart reliably: a scratch is long and
thin. Everything else keeps ``subtype=None``, which the gate judges as the strictest subtype it
could be: a false reject, never an escape.

A small round flaw is *not* read as a pit from its shape: a small blister or rust spot has the same
outline, and every spec allows none of those. Read as a pit (up to 0.2-0.5 mm allowed), it passed
them: on 500 magsynth-v2 validation parts 4 of 12 escapes were such spots, where judging them as
the strictest subtype costs 6 more false rejects among 219 conforming parts (BENCHMARKS.md).

A pit can be told from a blister by how it looks (a dark hole, not a raised bump): the
:class:`SubtypeClassifier` (a small CNN over the same candidate patches as the look-alike verifier,
``magspect train-subtypes``) gives each coating flaw the *set* of subtypes it could plausibly be,
and the gate judges the strictest of that set. Only a flaw whose every plausible subtype is allowed
(a pit, a stain) can pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from magspect.inspect.verifier import CandidateModelManifest, candidate_inputs, candidate_session
from magspect.specs import Spec
from magspect.types import DEFECT_SUBTYPES, Defect

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


# -- the coating-flaw subtype classifier ----------------------------------------------------------

SUBTYPES_METADATA_KEY = "magspect.subtypes"
#: Not a coating flaw at all (the candidate lies on a crack or a chip the model called a coating flaw).
OTHER = "other"
SUBTYPE_LABELS: tuple[str, ...] = (*DEFECT_SUBTYPES["coating_flaw"], OTHER)


class SubtypeManifest(CandidateModelManifest):
    """What a runtime needs to use an exported subtype classifier (embedded in its ONNX metadata)."""

    kind: Literal["subtypes"] = "subtypes"
    labels: tuple[str, ...] = SUBTYPE_LABELS  # the order of the output's columns
    # a label with probability >= this is one the flaw could be; the gate judges the strictest of them
    plausible_at: float = Field(gt=0.0, lt=1.0)


class SubtypeError(RuntimeError):
    """The subtype classifier's file cannot be used (missing, no manifest, wrong inputs)."""


class SubtypeClassifier:
    """Says which coating flaw a candidate is, from how it looks (a pit is a dark hole, a blister a
    raised bump, rust a rough blotch, a stain a soft discolouration), as a set of plausible subtypes.

    Fail-safe by construction: each coating flaw gets every subtype whose probability reaches the
    manifest's ``plausible_at`` (chosen on held-out candidates so that the true subtype is in the set
    for nearly all strict ones, ``magspect train-subtypes``), and the gate judges the strictest of
    them. A flaw it cannot place (no subtype plausible, or "not a coating flaw" plausible) keeps
    ``possible_subtypes=None``: any subtype, as without the classifier. Thread-safe.
    """

    def __init__(self, path: str | Path, *, threads: int | None = 1, providers: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.session, self.sha256, meta, self.channels = candidate_session(
            self.path, threads, providers, SUBTYPES_METADATA_KEY, SubtypeError, "subtype classifier"
        )
        self.manifest = SubtypeManifest.from_json(meta)
        unknown = [lab for lab in self.manifest.labels if lab not in SUBTYPE_LABELS]
        if unknown:
            raise SubtypeError(f"subtype classifier {self.path}: labels {unknown} are no coating-flaw subtypes "
                               f"(known: {', '.join(SUBTYPE_LABELS)})")
        out = self.session.get_outputs()[0]
        if out.name != "logits" or out.shape[-1] != len(self.manifest.labels):
            raise SubtypeError(f"subtype classifier {self.path}: output {out.name} {out.shape}, expected "
                               f"logits with {len(self.manifest.labels)} columns ({', '.join(self.manifest.labels)})")

    @property
    def name(self) -> str:
        return self.manifest.name

    def probabilities(self, patches: np.ndarray, features: np.ndarray) -> np.ndarray:
        """``N x labels`` softmax probabilities."""
        if len(patches) == 0:
            return np.zeros((0, len(self.manifest.labels)), np.float32)
        return softmax(self.session.run(["logits"], {"patches": patches, "features": features})[0])

    def apply(self, image: np.ndarray, class_mask: np.ndarray, defects: Sequence[Defect]) -> list[Defect]:
        """``defects`` (one view's) with each coating flaw of unknown subtype given its scores and
        plausible subtypes (one plausible subtype: that ``subtype``). Other defects unchanged."""
        out = list(defects)
        todo = [i for i, d in enumerate(out) if d.class_name == "coating_flaw" and d.subtype is None]
        if not todo:
            return out
        probs = self.probabilities(*candidate_inputs(image, class_mask, [out[i] for i in todo], self.manifest,
                                                             self.channels))
        labels, at = self.manifest.labels, self.manifest.plausible_at
        for i, p in zip(todo, probs, strict=True):
            update: dict[str, object] = {
                "subtype_scores": {lab: round(float(q), 4) for lab, q in zip(labels, p.tolist(), strict=True)}
            }
            kinds = plausible_subtypes(p, labels, at)
            if kinds is not None and len(kinds) == 1:
                update["subtype"] = kinds[0]
            elif kinds is not None:
                update["possible_subtypes"] = kinds
            out[i] = out[i].model_copy(update=update)
        return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``N x labels`` logits (float32)."""
    z = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def plausible_subtypes(probs: np.ndarray, labels: Sequence[str], at: float) -> tuple[str, ...] | None:
    """The subtypes a flaw with these probabilities (one per label) could be: every label at or above
    ``at``. None (any subtype: the strictest reading) when none reaches it or "other" (not a coating
    flaw) does. What the gate judges the flaw by; training measures its operating point with it."""
    kinds = tuple(lab for lab, q in zip(labels, np.asarray(probs).tolist(), strict=True) if q >= at)
    return None if not kinds or OTHER in kinds else kinds


def lenient_subtypes(specs: Sequence[Spec] | None = None) -> tuple[str, ...]:
    """Coating-flaw subtypes that one of ``specs`` (default: every bundled spec) allows, with a size
    or count limit; every other label is strict: any one rejects the part under all of them."""
    from magspect.specs import list_specs

    allowed = set()
    for spec in list_specs() if specs is None else specs:
        for r in spec.defects:
            if r.class_name == "coating_flaw" and r.subtype is not None and r.max_count != 0:
                allowed.add(r.subtype)
    return tuple(s for s in SUBTYPE_LABELS if s in allowed)


def relieved(kinds: Sequence[str] | None, lenient: Sequence[str]) -> bool:
    """Is a coating flaw that could be ``kinds`` (None: any) relieved of the strictest reading: is
    every subtype it could be lenient?"""
    return bool(kinds) and all(k in lenient for k in kinds)


def defect_relieved(d: Defect, lenient: Sequence[str]) -> bool:
    """:func:`relieved` for a reported defect (its ``subtype``, else its ``possible_subtypes``)."""
    kinds = (d.subtype,) if d.subtype is not None else d.possible_subtypes
    return d.class_name == "coating_flaw" and relieved(kinds, lenient)


def bundled_subtypes_path() -> Path:
    from importlib import resources  # noqa: PLC0415

    return Path(str(resources.files("magspect.models") / "weights" / "default-subtypes.onnx"))
