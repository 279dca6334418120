"""The spec schema: what a drawing and an appearance standard say about one part number."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from magspect.specs.parts import SHAPES, PartFamily, family
from magspect.types import DEFECT_CLASSES, DEFECT_SUBTYPES, ZONES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PartSpec(_Model):
    shape: Literal["block", "disc", "ring", "arc"]
    coating: Literal["NiCuNi", "Zn", "epoxy", "phosphate", "uncoated"]
    coating_thickness_um: tuple[float, float] | None = None
    material_grade: str | None = None
    number: str | None = None  # part number on the drawing
    revision: str | None = None


class DimensionSpec(_Model):
    """A nominal with a (possibly asymmetric) tolerance. ``tol`` is shorthand for ±tol."""

    nominal: float
    tol_plus: float = Field(ge=0)
    tol_minus: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _symmetric(cls, data):  # noqa: ANN001, ANN206
        if isinstance(data, dict) and "tol" in data:
            data = dict(data)
            tol = data.pop("tol")
            if "tol_plus" in data or "tol_minus" in data:
                raise ValueError("give either tol or tol_plus/tol_minus, not both")
            data["tol_plus"] = data["tol_minus"] = tol
        return data

    @property
    def lower(self) -> float:
        return self.nominal - self.tol_minus

    @property
    def upper(self) -> float:
        return self.nominal + self.tol_plus


class DecisionSpec(_Model):
    """ISO 14253-1 decision rule: conformance is proven only inside the limits shrunk by U."""

    guard_band: bool = True
    uncertainty_mm: float = Field(default=0.005, ge=0)  # expanded uncertainty U (k=2) of mm dimensions
    uncertainty_deg: float = Field(default=0.05, ge=0)  # expanded uncertainty of angles
    min_confidence: float = Field(default=0.5, ge=0, le=1)  # a defect call below this goes to REVIEW
    grr_pct_max: float = Field(default=10.0, gt=0)
    #: Expanded uncertainty of a defect's measured length, width and depth, in pixels of its view
    #: (mask edges are good to about a pixel). Defect sizes within it of a limit go to REVIEW. A
    #: floor: a model that measures lengths less well says so in its manifest (``defect_length_uncertainty_px``,
    #: measured by ``magspect calibrate-sizing``) and the Inspector takes the larger.
    defect_uncertainty_px: float = Field(default=1.0, ge=0)


class ZoneSpec(_Model):
    edge_band_mm: float = Field(default=0.3, ge=0)
    corner_radius_mm: float = Field(default=0.5, ge=0)


class DefectRule(_Model):
    """Limits for the defects of one class (and optionally subtype) in some zones.

    A defect matches a rule when its class, subtype (if the rule names one) and zone (if the rule
    names zones) match. Every matching defect must meet every per-instance limit; the matching
    defects together must meet ``max_count`` and the cumulative limits. A limit of ``None`` is not
    checked; ``max_count: 0`` forbids the defect outright. Limits are inclusive (at the limit passes).
    """

    class_name: Literal["crack", "chip", "coating_flaw"] = Field(alias="class")
    subtype: str | None = None
    zones: tuple[Literal["pole_face", "side_face", "edge", "corner"], ...] = ZONES  # type: ignore[assignment]
    max_count: int | None = Field(default=None, ge=0)
    max_length_mm: float | None = Field(default=None, ge=0)
    max_width_mm: float | None = Field(default=None, ge=0)
    max_depth_mm: float | None = Field(default=None, ge=0)
    max_area_mm2: float | None = Field(default=None, ge=0)
    max_total_length_mm: float | None = Field(default=None, ge=0)
    max_total_area_mm2: float | None = Field(default=None, ge=0)
    note: str | None = None

    @field_validator("zones", mode="before")
    @classmethod
    def _any_zone(cls, v):  # noqa: ANN001, ANN206
        if v == "any" or v == ["any"]:
            return ZONES
        if isinstance(v, str):
            return (v,)
        return v

    @model_validator(mode="after")
    def _subtype_known(self) -> DefectRule:
        if self.subtype is not None and self.subtype not in DEFECT_SUBTYPES[self.class_name]:
            raise ValueError(
                f"unknown subtype {self.subtype!r} for class {self.class_name!r}; "
                f"known: {', '.join(DEFECT_SUBTYPES[self.class_name])}"
            )
        return self

    @property
    def rule_id(self) -> str:
        sub = self.subtype or "any"
        zones = "any" if set(self.zones) == set(ZONES) else "+".join(self.zones)
        return f"defect.{self.class_name}.{sub}.{zones}"

    def matches(self, class_name: str, subtype: str | None, zone: str) -> bool:
        if class_name != self.class_name or zone not in self.zones:
            return False
        return self.subtype is None or self.subtype == subtype


class Spec(_Model):
    """One part number's drawing and appearance standard."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: int = Field(ge=1)
    title: str
    grade: Literal["defence", "commercial"]
    part: PartSpec
    dimensions: dict[str, DimensionSpec]
    decision: DecisionSpec = DecisionSpec()
    zones: ZoneSpec = ZoneSpec()
    defects: tuple[DefectRule, ...]
    notes: str | None = None

    @model_validator(mode="after")
    def _dimensions_match_family(self) -> Spec:
        fam = family(self.part.shape)
        unknown = sorted(set(self.dimensions) - set(fam.names))
        if unknown:
            raise ValueError(f"dimensions {unknown} do not exist for a {self.part.shape}; it has {list(fam.names)}")
        missing = sorted(set(fam.names) - set(self.dimensions))
        if missing:
            raise ValueError(f"a {self.part.shape} spec must give every dimension; missing {missing}")
        for d in fam.dimensions:
            if d.kind == "form" and (self.dimensions[d.name].nominal != 0 or self.dimensions[d.name].tol_minus):
                raise ValueError(f"{d.name} is a form tolerance: nominal 0, tol_plus only")
        return self

    @property
    def family(self) -> PartFamily:
        return family(self.part.shape)

    def nominal_mm(self) -> dict[str, float]:
        """Nominal value of every dimension (mm, or degrees for ``*_deg``)."""
        return {name: d.nominal for name, d in self.dimensions.items()}


assert set(SHAPES) == {"block", "disc", "ring", "arc"}
assert set(DEFECT_CLASSES) == {"crack", "chip", "coating_flaw"}
