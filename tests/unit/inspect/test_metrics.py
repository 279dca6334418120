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


def test_false_reported_defects_are_attributed_to_their_cause():
    from magspect.inspect.metrics import false_reported_defects

    t = np.zeros((200, 200), np.uint8)
    t[50:150, 50:150] = 1  # the part
    t[90:92, 60:100] = 2  # a true crack
    nuisances = [{"kind": "lint", "bbox_xyxy_px": [110, 110, 140, 120]}, {"kind": "dust", "bbox_xyxy_px": [5, 5, 9, 9]}]
    reported = [
        (62, 89, 98, 93),  # the crack: a true detection, not counted
        (115, 112, 125, 118),  # on the lint fibre
        (4, 4, 8, 8),  # on the dust speck, off the part
        (48, 70, 53, 75),  # on the part's edge
        (70, 120, 75, 125),  # on the clean surface
        (170, 170, 175, 175),  # on the fixture, no nuisance recorded there
    ]
    assert false_reported_defects(reported, t, nuisances) == ["lint", "dust", "outline", "surface", "off_part"]
    assert false_reported_defects(reported[:1], t, nuisances) == []
    from magspect.inspect.metrics import reported_defect_causes

    # the same, one entry per reported box: None where it found the truth defect
    assert reported_defect_causes(reported, t, nuisances) == [None, "lint", "dust", "outline", "surface", "off_part"]
