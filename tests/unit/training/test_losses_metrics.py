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
