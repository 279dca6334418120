"""Part specs: drawings (dimensions and tolerances), zones, defect limits and the decision rule."""

from magspect.specs._loader import SpecError, UnknownSpecError, get_spec, list_specs, load_spec_file, parse_spec
from magspect.specs._schema import DecisionSpec, DefectRule, DimensionSpec, PartSpec, Spec, ZoneSpec
from magspect.specs.parts import PART_FAMILIES, SHAPES, DimensionDef, PartFamily, family

__all__ = [
    "PART_FAMILIES",
    "SHAPES",
    "DecisionSpec",
    "DefectRule",
    "DimensionDef",
    "DimensionSpec",
    "PartFamily",
    "PartSpec",
    "Spec",
    "SpecError",
    "UnknownSpecError",
    "ZoneSpec",
    "family",
    "get_spec",
    "list_specs",
    "load_spec_file",
    "parse_spec",
]
