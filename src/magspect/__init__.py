"""magspect: computer-vision quality inspection for sintered NdFeB permanent magnets."""

from magspect.types import (
    CLASS_NAMES,
    DEFECT_CLASSES,
    Defect,
    GateResult,
    InspectionResult,
    Measurement,
    MeasurementStatus,
    Reason,
    Verdict,
)

__version__ = "0.1.0"

__all__ = [
    "CLASS_NAMES",
    "DEFECT_CLASSES",
    "Defect",
    "GateResult",
    "InspectionResult",
    "Measurement",
    "MeasurementStatus",
    "Reason",
    "Verdict",
    "__version__",
]
