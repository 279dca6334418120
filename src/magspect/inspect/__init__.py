"""The inspection runtime: metrology, defect measurement, the gate, and the ONNX Inspector.

numpy, OpenCV and onnxruntime only: importing this package never loads torch (a test proves it).

>>> from magspect.inspect import Inspector
>>> # result = Inspector().inspect({"top": "p1_top.png", "side": "p1_side.png"},
>>> #                              spec="def-blk-20x10x5-nicuni", um_per_px={"top": 24.4, "side": 24.4})
>>> # result.verdict, [r.message for r in result.reasons]
"""

from magspect.inspect.backend import ModelError, Segmenter, bundled_model_path, choose_providers
from magspect.inspect.calibration import (
    Calibration,
    CalibrationError,
    MissingCalibrationError,
    calibrate_camera,
    telecentric_calibration,
)
from magspect.inspect.defect_measure import measure_defects
from magspect.inspect.gate import assess_dimension, combine, fail_closed, judge, judge_truth
from magspect.inspect.imageio import ImageError, decode_image
from magspect.inspect.inspector import Inspection, Inspector, PartRequest, ScaleError
from magspect.inspect.metrology import (
    MetrologyResult,
    PartNotFoundError,
    measure_view,
    not_measured,
    to_measurements,
)

__all__ = [
    "Calibration",
    "CalibrationError",
    "ImageError",
    "Inspection",
    "Inspector",
    "MetrologyResult",
    "MissingCalibrationError",
    "ModelError",
    "PartNotFoundError",
    "PartRequest",
    "ScaleError",
    "Segmenter",
    "assess_dimension",
    "bundled_model_path",
    "calibrate_camera",
    "choose_providers",
    "combine",
    "decode_image",
    "fail_closed",
    "judge",
    "judge_truth",
    "measure_defects",
    "measure_view",
    "not_measured",
    "telecentric_calibration",
    "to_measurements",
]
