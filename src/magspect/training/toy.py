"""A tiny, seeded stand-in dataset (a bright part, a thin dark crack, a bright coating flaw, a
notch cut from the part's edge as a chip) for tests and smoke runs; not for real training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from magspect.training.data import write_pair
from magspect.types import CLASS_IDS


def toy_views(n: int, size_px: int = 96, seed: int = 0, dtype: type = np.uint8) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` grayscale views ``(image, class_mask)`` of ``size_px`` x ``size_px``."""
    rng = np.random.default_rng(seed)
    full = 255 if dtype == np.uint8 else 65535
    out = []
    m = max(4, size_px // 10)
    for _ in range(n):
        img = np.full((size_px, size_px), 0.08, np.float64)
        mask = np.zeros((size_px, size_px), np.uint8)
        img[m:-m, m:-m] = 0.62
        mask[m:-m, m:-m] = CLASS_IDS["good_surface"]
        # chip: a notch off the top edge, exposing a darker matte face
        cx = int(rng.integers(2 * m, size_px - 3 * m))
        img[m : m + m // 2 + 2, cx : cx + m] = 0.3
        mask[m : m + m // 2 + 2, cx : cx + m] = CLASS_IDS["chip"]
        # crack: a 1-2 px dark line
        y = int(rng.integers(3 * m, size_px - 3 * m))
        x0 = int(rng.integers(m + 2, size_px // 2))
        length = int(rng.integers(size_px // 4, size_px // 2))
        w = int(rng.integers(1, 3))
        img[y : y + w, x0 : x0 + length] = 0.2
        mask[y : y + w, x0 : x0 + length] = CLASS_IDS["crack"]
        # coating flaw: a bright blob
        cy, cxx = int(rng.integers(3 * m, size_px - 3 * m)), int(rng.integers(3 * m, size_px - 3 * m))
        r = max(2, m // 2)
        yy, xx = np.ogrid[:size_px, :size_px]
        blob = (yy - cy) ** 2 + (xx - cxx) ** 2 <= r * r
        img[blob] = 0.95
        mask[blob] = CLASS_IDS["coating_flaw"]
        img = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
        out.append(((img * full).round().astype(dtype), mask))
    return out


def write_toy_folder(root: str | Path, n: int, size_px: int = 96, seed: int = 0) -> Path:
    """Write :func:`toy_views` in :class:`~magspect.training.data.FolderSource` layout."""
    for i, (image, mask) in enumerate(toy_views(n, size_px, seed)):
        write_pair(root, f"toy-{seed}-{i:04d}", image, mask)
    return Path(root)


def toy_checkpoint(name: str = "unet_mnv3s", seed: int = 0) -> dict:
    """An untrained ``name`` network as a training checkpoint dict (what ``export_checkpoint`` takes),
    with non-trivial BatchNorm statistics from a few random batches, as after training."""
    import torch

    from magspect.models import create_model

    torch.manual_seed(seed)
    model = create_model(name, in_chans=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 64, 64))
    return {"model": model.state_dict(), "model_name": name, "model_kwargs": {}, "in_chans": 1,
            "model_cfg": model.cfg.to_dict(), "bit_depth": 8, "um_per_px": 25.0, "config_sha256": "cd" * 32,
            "git_commit": "0" * 40, "val_metrics": {"miou_defects": 0.25, "recall/crack": float("nan")}}
