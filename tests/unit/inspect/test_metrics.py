import math

import numpy as np
import pytest

from magspect.inspect.metrics import ConfusionAccumulator, auroc, false_detections, instance_recall, part_rates
from magspect.types import Verdict

P, R, V = Verdict.PASS, Verdict.REJECT, Verdict.REVIEW


def test_part_rates_count_escapes_false_rejects_and_reviews():
    truth = [P, P, P, P, R, R, R, R]
    pred = [P, R, V, P, P, R, R, V]
    r = part_rates(truth, pred)
    assert r["escape_rate"] == pytest.approx(1 / 4)
    assert r["false_reject_rate"] == pytest.approx(1 / 4)
    assert r["review_rate"] == pytest.approx(2 / 8)
    assert r["confusion"]["REJECT"]["PASS"] == 1 and r["confusion"]["PASS"]["REVIEW"] == 1
    with pytest.raises(ValueError):
        part_rates([P], [])


def test_auroc_known_values():
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    assert auroc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert math.isnan(auroc([0.1, 0.2], [1, 1]))


def test_iou_and_instance_recall():
    t = np.zeros((20, 20), np.uint8)
    t[5:10, 5:10] = 3
    p = np.zeros_like(t)
    p[5:10, 7:12] = 3
    acc = ConfusionAccumulator()
    acc.add(t, p)
    assert acc.iou()[3] == pytest.approx(15 / 35)
    inst = np.zeros((20, 20), np.int32)
    inst[5:10, 5:10] = 1
    inst[15, 15] = 2
    found = instance_recall(inst, {1: "chip", 2: "crack"}, p)
    assert found == {1: True, 2: False}
    assert false_detections(t, p) == {"crack": 0, "chip": 0, "coating_flaw": 0}
    p[0:3, 0:3] = 4
    assert false_detections(t, p)["coating_flaw"] == 1
