"""Training, evaluation, export and quantisation of the defect model (needs the ``train`` extra)."""

from magspect.training.config import TrainConfig

__all__ = ["TrainConfig"]
