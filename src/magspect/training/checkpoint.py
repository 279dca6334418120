"""Checkpoints: model weights plus everything export needs to write a manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_checkpoint(path: str | Path, **state: Any) -> Path:
    """Atomic save (write then rename), so a killed run never leaves a truncated checkpoint."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    return torch.load(Path(path), map_location="cpu", weights_only=False)


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> torch.nn.Module:
    """Rebuild the registered model a checkpoint was trained as, in eval mode."""
    from magspect.models import create_model

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = create_model(ckpt["model_name"], in_chans=ckpt["in_chans"], **ckpt.get("model_kwargs", {}))
    model.load_state_dict(ckpt["model"])
    return model.eval()
