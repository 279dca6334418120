"""The inspection runtime: metrology, defect measurement, the gate, and the ONNX Inspector.

numpy, OpenCV and onnxruntime only: importing this package never loads torch (a test proves it).
"""

from magspect.inspect.gate import assess_dimension, combine, fail_closed, judge, judge_truth

__all__ = ["assess_dimension", "combine", "fail_closed", "judge", "judge_truth"]
