"""Defect segmentation models (torch) and the torch-free manifest that travels with their ONNX.

Importing this package does not import torch: :func:`create_model` loads the architectures on
first use. The runtime (``magspect.inspect``, ``edge``, ``serve``) only ever touches
:mod:`magspect.models.manifest` and the bundled files in ``magspect/models/weights/``.
"""

from __future__ import annotations

from pathlib import Path

from magspect.models._registry import ModelConfig, create_model, default_cfg, list_models, register_model

#: Folder of the bundled ONNX models and their manifests.
WEIGHTS_DIR: Path = Path(__file__).parent / "weights"
DEFAULT_MODEL_PATH: Path = WEIGHTS_DIR / "default.onnx"
DEFAULT_INT8_MODEL_PATH: Path = WEIGHTS_DIR / "default-int8.onnx"

__all__ = [
    "DEFAULT_INT8_MODEL_PATH",
    "DEFAULT_MODEL_PATH",
    "WEIGHTS_DIR",
    "ModelConfig",
    "create_model",
    "default_cfg",
    "list_models",
    "register_model",
]
