"""Overlays mark what a person should look at: dismissed look-alikes grey, unsure kept defects amber."""

import numpy as np

from magspect.inspect.report import draw_overlay
from magspect.types import Defect, InspectionResult, Reason, Verdict


def _defect(box, **kw):
    return Defect(class_name="coating_flaw", zone="pole_face", view="top", length_mm=0.2, width_mm=0.2,
                  area_mm2=0.04, bbox_xyxy_px=box, **kw)


def _amber(img):
    b, g, r = img[..., 0].astype(int), img[..., 1].astype(int), img[..., 2].astype(int)
    return (r > 200) & (g > 150) & (b < 60)


def test_unsure_defects_are_boxed_amber_and_sure_ones_are_not():
    image = np.full((200, 300), 90, np.uint8)
    unsure = _defect((40.0, 60.0, 70.0, 90.0), review_reason="look-alike verifier unsure, score 0.015 < 0.020")
    sure = _defect((200.0, 60.0, 230.0, 90.0))
    why = Reason(rule="defect.coating_flaw.max_count", verdict=Verdict.REVIEW, message="unsure call: review")
    res = InspectionResult(part_id="p", verdict=Verdict.REVIEW, reasons=(why,), defects=(unsure, sure), views=("top",))
    out = draw_overlay(image, None, res, view="top")
    assert _amber(out[50:100, 30:80]).sum() > 20  # the unsure one's box
    assert _amber(out[50:100, 190:240]).sum() == 0  # the sure one is not boxed
    assert _amber(draw_overlay(image, None, res, view="side")[50:100, 30:80]).sum() == 0  # another view: no box
