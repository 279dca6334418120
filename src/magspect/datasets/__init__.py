"""Synthetic sintered-magnet images with exact ground truth (numpy and OpenCV only, no torch).

>>> from magspect.datasets import SynthConfig, generate_part
>>> part = generate_part("def-blk-20x10x5-nicuni", seed=1, config=SynthConfig(size_px=256))
>>> part.views["top"].image.shape
(256, 256)
"""

from magspect.datasets._config import LIGHTINGS, SURFACES, SynthConfig
from magspect.datasets._generate import RenderedView, SynthPart, generate_part

__all__ = [
    "LIGHTINGS",
    "SURFACES",
    "RenderedView",
    "SynthConfig",
    "SynthPart",
    "generate_part",
]
