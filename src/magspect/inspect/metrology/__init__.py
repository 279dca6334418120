"""Sub-pixel metrology of back-lit magnet silhouettes: find the part, fit it robustly, report mm.

>>> from magspect.inspect.metrology import measure_view
>>> # result = measure_view(image, "def-blk-20x10x5-nicuni", "top", um_per_px=25.0)
>>> # result.values["length"]  -> millimetres
"""

from magspect.inspect.metrology._fit import Circle, FitError, Line, fit_circle, fit_line
from magspect.inspect.metrology._measure import measure_view, not_measured, to_measurements
from magspect.inspect.metrology._result import MetrologyResult, OutlineEdge
from magspect.inspect.metrology._silhouette import PartNotFoundError, Silhouette, find_part

__all__ = [
    "Circle",
    "FitError",
    "Line",
    "MetrologyResult",
    "OutlineEdge",
    "PartNotFoundError",
    "Silhouette",
    "find_part",
    "fit_circle",
    "fit_line",
    "measure_view",
    "not_measured",
    "to_measurements",
]
