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


def test_a_coating_flaws_kind_is_written_under_it_when_known():
    from magspect.inspect.report import subtype_words

    image = np.full((200, 300), 90, np.uint8)
    pit = _defect((40.0, 60.0, 70.0, 90.0), subtype="pit")
    either = _defect((200.0, 60.0, 230.0, 90.0), possible_subtypes=("pit", "stain"))
    unknown = _defect((120.0, 140.0, 150.0, 170.0))
    assert [subtype_words(d) for d in (pit, either, unknown)] == ["pit", "pit/stain", ""]
    res = InspectionResult(part_id="p", verdict=Verdict.PASS, defects=(pit, either, unknown), views=("top",))
    plain = draw_overlay(image, None, InspectionResult(part_id="p", verdict=Verdict.PASS, views=("top",)), view="top")
    out = draw_overlay(image, None, res, view="top")
    changed = (out != plain).any(axis=2)
    assert changed[92:106, 40:80].sum() > 10 and changed[92:106, 200:260].sum() > 10  # the words under each box
    assert changed[172:186, 120:160].sum() == 0  # nothing under the unknown one


def test_the_report_says_why_each_dismissed_candidate_was_not_judged(tmp_path):
    from magspect.inspect.report import ReportEntry, write_html_report

    fibre = _defect((40.0, 60.0, 70.0, 90.0)).model_copy(update={
        "class_name": "crack", "zone": "edge",
        "dismissed_because": "a dark line runs on 0.29 mm (24 px) past the part's outline: a fibre"})
    dust = _defect((200.0, 60.0, 230.0, 90.0), dismissed_because="look-alike verifier score 0.010 < 0.080")
    res = InspectionResult(part_id="p", verdict=Verdict.PASS, dismissed=(fibre, dust), views=("top",))
    html = write_html_report([ReportEntry(res)], tmp_path / "r.html").read_text()
    assert "2 look-alike(s) dismissed, not judged" in html
    assert "top crack (a dark line runs on 0.29 mm (24 px) past the part&#x27;s outline: a fibre)" in html
    assert "top coating flaw (look-alike verifier score 0.010 &lt; 0.080)" in html
