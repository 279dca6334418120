"""Synthetic sintered-magnet images with exact ground truth (numpy and OpenCV only, no torch).

>>> from magspect.datasets import SynthConfig, generate_part
>>> part = generate_part("def-blk-20x10x5-nicuni", seed=1, config=SynthConfig(size_px=256))
>>> part.views["top"].image.shape
(256, 256)
"""

from magspect.datasets._config import FRONT_LIGHTINGS, LIGHTINGS, SURFACES, SynthConfig
from magspect.datasets._contact import contact_sheet
from magspect.datasets._generate import RenderedView, SynthPart, generate_part, plan_defects
from magspect.datasets._splits import SUITES, SynthSuite, get_suite, magsynth_v1, magsynth_v2, magsynth_v3
from magspect.datasets._writer import read_truth, write_dataset
from magspect.datasets.coco import masks_from_coco, read_coco

__all__ = [
    "FRONT_LIGHTINGS",
    "LIGHTINGS",
    "SUITES",
    "SURFACES",
    "RenderedView",
    "SynthConfig",
    "SynthPart",
    "SynthSuite",
    "contact_sheet",
    "generate_part",
    "get_suite",
    "magsynth_v1",
    "magsynth_v2",
    "magsynth_v3",
    "masks_from_coco",
    "plan_defects",
    "read_coco",
    "read_truth",
    "write_dataset",
]
