"""Validation: whole views through the model, scored with :class:`SegMetrics`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from magspect.training.config import TrainConfig
from magspect.training.data import FolderSource, SynthStreamSource, to_unit_float, visible_labels
from magspect.training.metrics import SegMetrics


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: torch.Tensor, multiple: int = 32) -> torch.Tensor:
    """``N x C x H x W`` in [0, 1] -> logits at the same size (padded to ``multiple`` inside)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return model(x)[..., :h, :w]


def magsynth_views(
    n_parts: int, split: str = "val", views: tuple[str, ...] = ("top", "side"), suite: str = "magsynth-v1"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every view of the first ``n_parts`` parts of a fixed synthetic split (default: magsynth-v1
    validation), with the labels the images can show (:func:`visible_labels`)."""
    from magspect.datasets import get_suite

    out = []
    for part in get_suite(suite).iter_parts(split, limit=n_parts, views=tuple(views)):
        for name in views:
            v = part.views[name]
            out.append((v.image, visible_labels(v.class_mask, v.truth.get("lighting"))))
    return out


def load_val_views(cfg: TrainConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    v = cfg.val
    if v.source == "none":
        return []
    if v.source in ("magsynth_v1", "magsynth_v2", "magsynth_v3"):
        return magsynth_views(v.n_parts, "val", suite=v.source.replace("_", "-"))
    if v.source == "folder":
        src = FolderSource(v.folder)
        return [src.load(i) for i in range(min(v.n_parts, len(src)))]
    s = v.synth or cfg.data.synth
    src = SynthStreamSource(s.specs, s.views, s.seed, None, s.synth)
    return [src.render(s.seed + i, s.specs[i % len(s.specs)], s.views[0])[:2] for i in range(v.n_parts)]


def part_box(mask: np.ndarray, context_px: int | None) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``: the labelled part's bounding box widened by ``context_px`` (the whole
    view when ``context_px`` is None or nothing is labelled)."""
    h, w = mask.shape[:2]
    if context_px is None:
        return 0, h, 0, w
    ys, xs = np.nonzero(mask > 0)
    if ys.size == 0:
        return 0, h, 0, w
    c = context_px
    y0, y1 = max(int(ys.min()) - c, 0), min(int(ys.max()) + c + 1, h)
    return y0, y1, max(int(xs.min()) - c, 0), min(int(xs.max()) + c + 1, w)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    views: list[tuple[np.ndarray, np.ndarray]],
    in_chans: int,
    device: torch.device | str = "cpu",
    min_area_px: int = 4,
    context_px: int | None = 32,
) -> dict[str, float]:
    """Per-class IoU and instance recall/precision over ``views`` (one view at a time).

    Each view is cut to its part with ``context_px`` around it, as the runtime feeds the model
    (``magspect.inspect.inspector.MODEL_CONTEXT_PX``); ``None`` scores whole views.
    """
    was_training = model.training
    model.eval()
    m = SegMetrics(min_area_px=min_area_px)
    for image, mask in views:
        y0, y1, x0, x1 = part_box(mask, context_px)
        image, mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
        x = torch.from_numpy(to_unit_float(image, in_chans).transpose(2, 0, 1)).unsqueeze(0).to(device)
        pred = predict_logits(model, x).argmax(1)[0].cpu().numpy().astype(np.uint8)
        m.update(pred, mask)
    model.train(was_training)
    return m.summary()
