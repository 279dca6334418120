"""Loss and metrics on hand-made cases whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from magspect.training.losses import SegLoss
from magspect.training.metrics import SegMetrics


def _logits_for(target: torch.Tensor, scale: float = 20.0) -> torch.Tensor:
    return torch.nn.functional.one_hot(target, 5).permute(0, 3, 1, 2).float() * scale


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_loss_near_zero_when_right_and_large_when_wrong(gamma):
    t = torch.zeros(2, 16, 16, dtype=torch.long)
    t[:, 4:6, 2:12] = 2
    t[:, 10:14, 10:14] = 4
    loss = SegLoss([0.5, 0.5, 3, 2, 2], focal_gamma=gamma)
    good = float(loss(_logits_for(t), t))
    bad = float(loss(_logits_for(torch.zeros_like(t)), t))
    assert good < 0.01 and bad > 1.0


def test_loss_without_defects_in_batch_is_finite_and_differentiable():
    t = torch.ones(1, 8, 8, dtype=torch.long)
    logits = torch.zeros(1, 5, 8, 8, requires_grad=True)
    value = SegLoss()(logits, t)
    value.backward()
    assert math.isfinite(float(value.detach())) and logits.grad is not None


def test_metrics_iou_and_instances():
    truth = np.zeros((32, 32), np.uint8)
    truth[2:4, 2:20] = 2  # crack A
    truth[20:22, 2:20] = 2  # crack B
    truth[10:14, 25:29] = 4  # coating flaw
    pred = np.zeros_like(truth)
    pred[2:4, 2:10] = 2  # finds crack A (partly)
    pred[28:31, 28:31] = 2  # false crack (9 px)
    pred[30, 0] = 2  # 1-px speck below min area: ignored
    pred[10:14, 25:29] = 4
    m = SegMetrics(min_area_px=4)
    m.update(pred, truth)
    s = m.summary()
    assert s["recall/crack"] == 0.5
    assert s["precision/crack"] == 0.5
    assert s["recall/coating_flaw"] == 1.0 and s["iou/coating_flaw"] == 1.0
    assert s["iou/crack"] == pytest.approx(16 / (72 + 9 + 1))
    assert math.isnan(s["recall/chip"])
    with pytest.raises(ValueError):
        m.update(pred[:10], truth)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_ignored_pixels_count_in_neither_loss_term(gamma):
    """Labels of 255 (a surface flaw on a back-lit view) neither reward nor punish any prediction."""
    t = torch.zeros(2, 16, 16, dtype=torch.long)
    t[:, 4:6, 2:12] = 2
    t[:, 10:14, 10:14] = 4
    ignored = t.clone()
    ignored[:, 10:14, 10:14] = 255
    loss = SegLoss([0.5, 0.5, 3, 2, 2], focal_gamma=gamma)
    logits = _logits_for(t, 3.0).requires_grad_(True)
    base = loss(logits, ignored)
    other = logits.detach().clone()
    other[:, :, 10:14, 10:14] = torch.randn(2, 5, 4, 4) * 10  # anything at all where the label is ignored
    assert torch.isclose(loss(other, ignored), base, atol=1e-6)
    base.backward()
    assert logits.grad[:, :, 10:14, 10:14].abs().max() == 0
    assert not torch.isclose(loss(other, t), base)  # without the ignore label the region counts


def test_metrics_skip_ignored_pixels():
    truth = np.zeros((32, 32), np.uint8)
    truth[5:10, 5:10] = 255  # unlabelled
    truth[20:25, 20:25] = 4
    pred = np.zeros_like(truth)
    pred[5:10, 5:10] = 4  # a call on the unlabelled region: not a false instance
    pred[20:25, 20:25] = 4
    m = SegMetrics()
    m.update(pred, truth)
    s = m.summary()
    assert s["precision/coating_flaw"] == 1.0 and s["recall/coating_flaw"] == 1.0
    assert s["pixel_accuracy"] == 1.0 and m.confusion.sum() == 32 * 32 - 25


def test_surface_flaws_are_unlabelled_on_back_lit_views_only():
    from magspect.training.data import IGNORE_ID, visible_labels

    mask = np.array([[0, 1, 2, 3, 4]], np.uint8)
    assert visible_labels(mask, "backlight").tolist() == [[0, 1, IGNORE_ID, 3, IGNORE_ID]]
    for lighting in ("coaxial", "dome", "darkfield", None):
        assert visible_labels(mask, lighting) is mask


def test_validation_crops_each_view_to_its_part_like_the_runtime():
    from magspect.training.validate import part_box

    mask = np.zeros((100, 120), np.uint8)
    mask[40:60, 50:70] = 1
    assert part_box(mask, 10) == (30, 70, 40, 80)
    assert part_box(mask, 100) == (0, 100, 0, 120)  # clipped to the view
    assert part_box(mask, None) == (0, 100, 0, 120)
    assert part_box(np.zeros_like(mask), 10) == (0, 100, 0, 120)  # nothing labelled: the whole view


def test_a_chips_bite_is_background_and_its_fracture_face_stays_chip():
    from magspect.training.data import visible_labels

    mask = np.ones((20, 20), np.uint8)
    mask[:, :5] = 0
    mask[0:4, 5:12] = 3  # a chip: rows 0-1 bitten off (no material), rows 2-3 its fracture face
    sil = np.zeros((20, 20), bool)
    sil[2:, 5:] = True  # material present
    out = visible_labels(mask, "coaxial", sil)
    assert (out[0:2, 5:12] == 0).all() and (out[2:4, 5:12] == 3).all()
    assert (mask[0:2, 5:12] == 3).all()  # the input is not modified
    assert visible_labels(mask, "coaxial") is mask


def test_streamed_labels_use_the_generators_silhouette():
    """A forced chip: its label keeps only pixels with material (the generator's coverage >= 0.5)."""
    from magspect.datasets import FRONT_LIGHTINGS, SynthConfig, generate_part
    from magspect.training.data import SynthStreamSource

    synth = {"size_px": 512, "force_defect": "chip", "lighting": FRONT_LIGHTINGS, "views": ("top",)}
    src = SynthStreamSource(["def-blk-20x10x5-nicuni"], ["top"], 0, None, synth)
    _, labels, _ = src.render(2, "def-blk-20x10x5-nicuni", "top")
    rv = generate_part("def-blk-20x10x5-nicuni", 2, SynthConfig(**synth)).views["top"]
    chip = rv.class_mask == 3
    assert chip.any() and (~(rv.coverage[chip] >= 0.5)).any()  # the truth chip includes its bite
    assert ((labels == 3) == (chip & (rv.coverage >= 0.5))).all()
