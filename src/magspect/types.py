"""Result types shared by the CLI, the REST service and the camera station.

One type per concept, validated on construction, no torch and no numpy arrays inside (so every
result serialises to JSON as-is). Units are in the field names: ``_mm``, ``_mm2``, ``_px``,
``_deg``, ``_ms``.

Pixel class ids (the per-pixel masks written by the generator and predicted by the model):

==  ==============  ================================================================
id  name            meaning
==  ==============  ================================================================
0   background      not the part (fixture, table, shadow)
1   good_surface    the part's surface with no defect (coated or ground)
2   crack           a crack, at any width
3   chip            material missing at an edge/corner, incl. its exposed fracture face
4   coating_flaw    blister, peel, pit, scratch through the top coat, rust, stain
==  ==============  ================================================================
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

CLASS_NAMES: tuple[str, ...] = ("background", "good_surface", "crack", "chip", "coating_flaw")
DEFECT_CLASSES: tuple[str, ...] = ("crack", "chip", "coating_flaw")
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

#: Subtypes per defect class. ``None`` subtype is allowed for model output that cannot tell.
DEFECT_SUBTYPES: dict[str, tuple[str, ...]] = {
    "crack": ("edge_crack", "corner_crack", "face_crack"),
    "chip": ("edge_chip", "corner_chip"),
    "coating_flaw": ("blister", "peel", "pit", "scratch", "rust", "stain"),
}

#: Where on the part a defect lies. The edge band and corner radius come from the spec.
ZONES: tuple[str, ...] = ("pole_face", "side_face", "edge", "corner")
VIEWS: tuple[str, ...] = ("top", "side")

View = Literal["top", "side"]
Zone = Literal["pole_face", "side_face", "edge", "corner"]
DefectClass = Literal["crack", "chip", "coating_flaw"]
# test-time augmentation of the defect model: none, the view and its left-right mirror, or all four
# mirrors (magspect.inspect.backend.TTA_FLIPS); one definition for the CLI, REST, station and runtime
Tta = Literal["none", "hflip", "flips"]
TTA_MODES: tuple[str, ...] = get_args(Tta)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Verdict(StrEnum):
    """A part's verdict. REVIEW means: not proven conforming, not proven nonconforming."""

    PASS = "PASS"
    REJECT = "REJECT"
    REVIEW = "REVIEW"


class MeasurementStatus(StrEnum):
    OK = "ok"  # inside the limits shrunk by the guard band: conformance proven
    GUARD_BAND = "guard_band"  # within one uncertainty of a limit: neither proven
    OUT_OF_TOLERANCE = "out_of_tolerance"  # outside the limits widened by the guard band
    NOT_MEASURED = "not_measured"  # could not be measured (part not found, view missing...)


class Measurement(_Strict):
    """One dimension of one part, against its drawing."""

    name: str  # same names as the truth's ``dimensions_mm`` keys: length, width, diameter, ...
    unit: Literal["mm", "deg"] = "mm"
    value: float | None  # None when not measured
    nominal: float
    tol_minus: float = Field(ge=0)  # lower limit = nominal - tol_minus
    tol_plus: float = Field(ge=0)  # upper limit = nominal + tol_plus
    uncertainty: float = Field(ge=0)  # expanded uncertainty U (k=2), same unit as value
    status: MeasurementStatus
    view: View | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data):  # noqa: ANN001, ANN206
        """Accept our own JSON back: value_mm / value_deg are derived from value and unit."""
        if isinstance(data, dict) and ("value_mm" in data or "value_deg" in data):
            data = {k: v for k, v in data.items() if k not in ("value_mm", "value_deg")}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def value_mm(self) -> float | None:
        return self.value if self.unit == "mm" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def value_deg(self) -> float | None:
        return self.value if self.unit == "deg" else None

    @property
    def lower(self) -> float:
        return self.nominal - self.tol_minus

    @property
    def upper(self) -> float:
        return self.nominal + self.tol_plus

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("measurement value must be finite (use None for not measured)")
        return v


class Defect(_Strict):
    """One defect instance with its geometry in millimetres."""

    class_name: DefectClass
    subtype: str | None = None
    # where ``subtype`` is None: the subtypes it could be (the coating-flaw subtype classifier's
    # plausible set, :mod:`magspect.inspect.subtype`); the gate judges it as the strictest of them.
    # None: any subtype of its class
    possible_subtypes: tuple[str, ...] | None = None
    # the subtype classifier's probability per subtype ("other": not a coating flaw at all)
    subtype_scores: dict[str, float] | None = None
    zone: Zone
    view: View = "top"
    length_mm: float = Field(ge=0)  # along the skeleton (cracks, scratches) or the longest extent
    width_mm: float = Field(ge=0)
    depth_mm: float | None = Field(default=None, ge=0)  # chips: inward from the ideal outline
    area_mm2: float = Field(ge=0)
    bbox_xyxy_px: tuple[float, float, float, float] | None = None
    confidence: float = Field(default=1.0, ge=0, le=1)
    uncertainty_mm: float = Field(default=0.0, ge=0)  # expanded uncertainty of length/width/depth
    # of the length alone, where the model's own sizing (measured, in its manifest) is wider than
    # the spec's band; None: uncertainty_mm
    length_uncertainty_mm: float | None = Field(default=None, ge=0)
    # the look-alike verifier's probability that this is a real defect (None: not verified)
    verifier_score: float | None = Field(default=None, ge=0, le=1)
    # why this defect can send the part to REVIEW only, never REJECT (a person decides): e.g. the
    # verifier kept it but is unsure; None: judged on its sizes alone
    review_reason: str | None = None
    # on a dismissed candidate only (``InspectionResult.dismissed``): why it was judged a look-alike
    # and left out of the verdict (the verifier's score, or a line running on off the part)
    dismissed_because: str | None = None
    edge_index: int | None = None  # which outline edge (1-based, as in messages) it lies on

    @field_validator("subtype")
    @classmethod
    def _known_subtype(cls, v: str | None, info) -> str | None:  # noqa: ANN001
        if v is None:
            return v
        klass = info.data.get("class_name")
        if klass in DEFECT_SUBTYPES and v not in DEFECT_SUBTYPES[klass]:
            raise ValueError(f"unknown subtype {v!r} for class {klass!r}; known: {DEFECT_SUBTYPES[klass]}")
        return v

    @field_validator("possible_subtypes")
    @classmethod
    def _known_possible(cls, v: tuple[str, ...] | None, info) -> tuple[str, ...] | None:  # noqa: ANN001
        if v is None:
            return v
        klass = info.data.get("class_name")
        if not v:
            raise ValueError("possible_subtypes must name at least one subtype (None: any)")
        unknown = [s for s in v if klass in DEFECT_SUBTYPES and s not in DEFECT_SUBTYPES[klass]]
        if unknown:
            raise ValueError(f"unknown subtypes {unknown} for class {klass!r}; known: {DEFECT_SUBTYPES[klass]}")
        return v


class Reason(_Strict):
    """One rule the part broke (or could not be shown to meet), in a quality engineer's words."""

    rule: str  # machine-readable rule id, e.g. "dimension.length" or "defect.chip.edge.max_depth_mm"
    verdict: Verdict  # REJECT or REVIEW: what this rule alone demands
    message: str  # e.g. "chip on edge 3: depth 0.42 mm > 0.30 mm"
    measured: float | None = None
    limit: float | None = None


class GateResult(_Strict):
    """The gate's output: a verdict and every rule behind it."""

    verdict: Verdict
    reasons: tuple[Reason, ...] = ()


class ModelRef(_Strict):
    name: str
    sha256: str
    provider: str | None = None


class SpecRef(_Strict):
    id: str
    version: int


class InspectionResult(_Strict):
    """Everything known about one inspected part: the common currency of CLI, REST and station."""

    part_id: str | None = None
    verdict: Verdict
    reasons: tuple[Reason, ...] = ()
    defects: tuple[Defect, ...] = ()
    measurements: dict[str, Measurement] = Field(default_factory=dict)
    spec: SpecRef | None = None
    model: ModelRef | None = None
    # the look-alike verifier, when one looked again at the model's candidates, and the candidates it
    # judged look-alikes (dust, lint, ...): kept for the record and the overlay, not judged by the gate
    verifier: ModelRef | None = None
    dismissed: tuple[Defect, ...] = ()
    # the coating-flaw subtype classifier, when one told the coating flaws' plausible subtypes
    subtypes: ModelRef | None = None
    calibration_id: str | None = None
    views: tuple[str, ...] = ()
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: str | None = None  # set when the inspection could not be completed (verdict never PASS)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def model_post_init(self, __context) -> None:  # noqa: ANN001
        if self.error is not None and self.verdict == Verdict.PASS:
            raise ValueError("an inspection that could not be completed must not PASS (fail closed)")
        if self.verdict != Verdict.PASS and not self.reasons and self.error is None:
            raise ValueError(f"verdict {self.verdict} needs at least one reason")
