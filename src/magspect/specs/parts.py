"""Part families: the one place that says which shapes exist and which dimensions each one has.

The spec schema (tolerances, zones, defect limits) extends these definitions; the generator draws
parts from them; metrology measures exactly these names; the truth's ``dimensions_mm`` uses them.
Dimension values are millimetres unless the name ends in ``_deg``.

Views: ``top`` looks along the press/magnetisation axis at a pole face (for an arc segment: along
the arc's axis at its end face, so radii, chord and angle are seen); ``side`` looks at a side face
and sees the thickness (for an arc segment: the axial length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Shape = Literal["block", "disc", "ring", "arc"]
SHAPES: tuple[str, ...] = ("block", "disc", "ring", "arc")


@dataclass(frozen=True)
class DimensionDef:
    name: str
    view: Literal["top", "side"]
    unit: Literal["mm", "deg"] = "mm"
    #: ``form`` dimensions have a nominal of 0 and a one-sided upper limit (perpendicularity,
    #: concentricity); ``size`` dimensions are a nominal with a tolerance.
    kind: Literal["size", "form"] = "size"
    description: str = ""


@dataclass(frozen=True)
class PartFamily:
    shape: Shape
    dimensions: tuple[DimensionDef, ...]
    #: The dimensions that define the ideal geometry (the rest are derived or form errors).
    defining: tuple[str, ...]

    def dimension(self, name: str) -> DimensionDef:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(f"{self.shape} has no dimension {name!r}; it has {[d.name for d in self.dimensions]}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)


PART_FAMILIES: dict[str, PartFamily] = {
    "block": PartFamily(
        shape="block",
        dimensions=(
            DimensionDef("length", "top", description="long side of the pole face"),
            DimensionDef("width", "top", description="short side of the pole face"),
            DimensionDef("chamfer", "top", description="leg of the 45-degree corner chamfer seen from the top"),
            DimensionDef(
                "perpendicularity_deg", "top", "deg", "form",
                "largest deviation of a corner angle from 90 degrees",
            ),
            DimensionDef("thickness", "side", description="along the press direction, between pole faces"),
        ),
        defining=("length", "width", "thickness", "chamfer"),
    ),
    "disc": PartFamily(
        shape="disc",
        dimensions=(
            DimensionDef("diameter", "top"),
            DimensionDef("thickness", "side"),
        ),
        defining=("diameter", "thickness"),
    ),
    "ring": PartFamily(
        shape="ring",
        dimensions=(
            DimensionDef("outer_diameter", "top"),
            DimensionDef("inner_diameter", "top"),
            DimensionDef("concentricity", "top", kind="form", description="distance between OD and ID centres"),
            DimensionDef("thickness", "side"),
        ),
        defining=("outer_diameter", "inner_diameter", "thickness"),
    ),
    "arc": PartFamily(
        shape="arc",
        dimensions=(
            DimensionDef("outer_radius", "top"),
            DimensionDef("inner_radius", "top"),
            DimensionDef("thickness", "top", description="radial wall thickness, outer minus inner radius"),
            DimensionDef("chord", "top", description="straight distance between the outer arc's end points"),
            DimensionDef("angle_deg", "top", "deg", description="included angle of the segment"),
            DimensionDef("length", "side", description="axial length of the segment"),
        ),
        defining=("outer_radius", "inner_radius", "angle_deg", "length"),
    ),
}


def family(shape: str) -> PartFamily:
    try:
        return PART_FAMILIES[shape]
    except KeyError:
        raise KeyError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}") from None
