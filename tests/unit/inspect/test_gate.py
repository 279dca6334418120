"""Table-driven gate tests: every rule kind, exactly at the limit, inside and outside the guard band."""

import pytest

from magspect.inspect.gate import assess_dimension, fail_closed, judge, judge_truth, truth_measurements
from magspect.specs import get_spec
from magspect.types import Defect, MeasurementStatus, Verdict

DEF = "def-blk-20x10x5-nicuni"  # length 20 ±0.05, U = 0.005 mm; perpendicularity ≤ 0.15 deg, U = 0.05
COM = "com-blk-20x10x5-zn"

NOMINAL = {"length": 20.0, "width": 10.0, "thickness": 5.0, "chamfer": 0.2, "perpendicularity_deg": 0.0}


def _dims(**over):
    return {**NOMINAL, **over}


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (20.000, MeasurementStatus.OK),
        (20.045, MeasurementStatus.OK),  # exactly at upper - U: conformance proven (inclusive)
        (20.046, MeasurementStatus.GUARD_BAND),
        (20.050, MeasurementStatus.GUARD_BAND),  # at the drawn limit: neither proven
        (20.055, MeasurementStatus.GUARD_BAND),  # exactly at upper + U: not yet proven out
        (20.056, MeasurementStatus.OUT_OF_TOLERANCE),
        (19.955, MeasurementStatus.OK),
        (19.954, MeasurementStatus.GUARD_BAND),
        (19.944, MeasurementStatus.OUT_OF_TOLERANCE),
        (None, MeasurementStatus.NOT_MEASURED),
    ],
)
def test_guard_band_statuses(value, status):
    m = assess_dimension(get_spec(DEF), "length", value)
    assert m.status == status
    assert m.uncertainty == pytest.approx(0.005)
    assert m.value_mm == value


def test_form_tolerance_is_one_sided():
    spec = get_spec(DEF)
    assert assess_dimension(spec, "perpendicularity_deg", 0.0).status == MeasurementStatus.OK
    assert assess_dimension(spec, "perpendicularity_deg", 0.10).status == MeasurementStatus.OK
    assert assess_dimension(spec, "perpendicularity_deg", 0.12).status == MeasurementStatus.GUARD_BAND
    assert assess_dimension(spec, "perpendicularity_deg", 0.21).status == MeasurementStatus.OUT_OF_TOLERANCE
    m = assess_dimension(spec, "perpendicularity_deg", 0.1)
    assert m.value_deg == 0.1 and m.value_mm is None


def test_truth_gate_exact_limit_passes_with_zero_uncertainty():
    r = judge_truth(get_spec(DEF), _dims(length=20.05, width=9.95), [])
    assert r.verdict == Verdict.PASS and r.reasons == ()
    r = judge_truth(get_spec(DEF), _dims(length=20.0501), [])
    assert r.verdict == Verdict.REJECT
    assert r.reasons[0].rule == "dimension.length"
    assert "20.050 mm > upper limit 20.050 mm" in r.reasons[0].message


def test_guard_band_sends_to_review_with_words():
    spec = get_spec(DEF)
    ms = {n: assess_dimension(spec, n, v) for n, v in _dims(width=10.048).items()}
    r = judge(spec, ms, [])
    assert r.verdict == Verdict.REVIEW
    assert [x.rule for x in r.reasons] == ["dimension.width"]
    assert "guard band" in r.reasons[0].message


def test_missing_measurement_never_passes():
    spec = get_spec(DEF)
    ms = {n: assess_dimension(spec, n, v) for n, v in NOMINAL.items() if n != "thickness"}
    r = judge(spec, ms, [])
    assert r.verdict == Verdict.REVIEW
    assert "thickness not measured (side view)" in r.reasons[0].message


def _chip(zone="edge", length=0.5, depth=0.2, width=0.2, area=0.05, conf=1.0, edge=3):
    return Defect(class_name="chip", subtype=None, zone=zone, length_mm=length, width_mm=width,
                  depth_mm=depth, area_mm2=area, confidence=conf, edge_index=edge)


@pytest.mark.parametrize(
    ("defects", "verdict", "needle"),
    [
        ([], Verdict.PASS, None),
        ([_chip(depth=0.30)], Verdict.PASS, None),  # exactly at the edge-chip depth limit
        ([_chip(depth=0.42)], Verdict.REJECT, "chip on edge 3: depth 0.42 mm > 0.30 mm"),
        ([_chip(length=1.01)], Verdict.REJECT, "chip on edge 3: length 1.01 mm > 1.00 mm"),
        ([_chip(), _chip()], Verdict.PASS, None),  # 2 edge chips allowed
        ([_chip(), _chip(), _chip()], Verdict.REJECT, "3 × chip on edge > 2 allowed"),
        ([_chip(zone="pole_face", depth=0.1, length=0.3, width=0.3, edge=None)], Verdict.PASS, None),
        ([_chip(zone="pole_face", depth=0.11, length=0.3, width=0.3, edge=None)], Verdict.REJECT, "depth 0.11"),
        ([_chip(depth=0.5, conf=0.3)], Verdict.REVIEW, "model confidence 0.30"),
        ([_chip(), _chip(), _chip(conf=0.2)], Verdict.REVIEW, "unsure calls"),
        ([_chip(depth=0.5).model_copy(update={"review_reason": "look-alike verifier unsure, score 0.015 < 0.020"})],
         Verdict.REVIEW, "depth 0.50 mm > 0.30 mm (look-alike verifier unsure, score 0.015 < 0.020: review)"),
        ([_chip(depth=None)], Verdict.REVIEW, "depth not measured"),
    ],
)
def test_chip_rules(defects, verdict, needle):
    r = judge_truth(get_spec(DEF), NOMINAL, defects)
    assert r.verdict == verdict, r.reasons
    if needle:
        assert any(needle in x.message for x in r.reasons), [x.message for x in r.reasons]


def _flaw(subtype, zone="pole_face", length=0.1, area=0.01, conf=1.0):
    return Defect(class_name="coating_flaw", subtype=subtype, zone=zone, length_mm=length, width_mm=length,
                  area_mm2=area, confidence=conf)


@pytest.mark.parametrize(
    ("spec", "defects", "verdict"),
    [
        (DEF, [_flaw("pit")], Verdict.REJECT),  # no pits on a defence pole face
        (DEF, [_flaw("pit", zone="side_face", length=0.2)], Verdict.PASS),  # at the 0.2 mm limit
        (DEF, [_flaw("pit", zone="side_face", length=0.21)], Verdict.REJECT),
        (DEF, [_flaw("pit", zone="side_face"), _flaw("pit", zone="edge")], Verdict.REJECT),  # max 1
        (COM, [_flaw("pit"), _flaw("pit")], Verdict.PASS),  # commercial: 2 pits <= 0.5 mm
        (COM, [_flaw("pit"), _flaw("pit"), _flaw("pit")], Verdict.REJECT),
        (DEF, [_flaw("stain", area=1.0)], Verdict.PASS),
        (DEF, [_flaw("stain", area=0.6), _flaw("stain", area=0.6)], Verdict.REJECT),  # cumulative 1.2 > 1.0
        (DEF, [_flaw("blister")], Verdict.REJECT),
        (COM, [_flaw("scratch")], Verdict.REJECT),
        (COM, [_flaw(None)], Verdict.REJECT),  # unknown subtype judged as the worst it could be
    ],
)
def test_coating_rules(spec, defects, verdict):
    assert judge_truth(get_spec(spec), _dims() if spec == DEF else NOMINAL, defects).verdict == verdict


def test_crack_anywhere_rejects_and_reasons_come_reject_first():
    crack = Defect(class_name="crack", zone="corner", length_mm=0.4, width_mm=0.02, area_mm2=0.008, edge_index=2)
    r = judge_truth(get_spec(DEF), _dims(length=20.0501), [crack])
    assert r.verdict == Verdict.REJECT
    assert "crack at corner 2: not allowed" in " ".join(x.message for x in r.reasons)
    assert all(x.verdict == Verdict.REJECT for x in r.reasons)


def test_uncovered_defect_goes_to_review():
    # the ring spec has no corner zone rules for pole-face-only chips... use a disc with a side-face pit
    spec = get_spec("def-disc-d10-t3-nicuni")
    d = Defect(class_name="coating_flaw", subtype="pit", zone="side_face", length_mm=0.1, width_mm=0.1, area_mm2=0.01)
    dims = {"diameter": 10.0, "thickness": 3.0}
    assert judge_truth(spec, dims, [d]).verdict == Verdict.PASS
    # a spec with no rule for the class at all: build one from YAML
    from magspect.specs import parse_spec

    y = get_spec(DEF).model_dump(by_alias=True)
    y["defects"] = [r for r in y["defects"] if r["class"] != "chip"]
    import yaml

    spec2 = parse_spec(yaml.safe_dump(y))
    r = judge_truth(spec2, NOMINAL, [_chip()])
    assert r.verdict == Verdict.REVIEW and "no rule" in r.reasons[0].message


def test_fail_closed_never_passes():
    r = fail_closed("part not found in top view")
    assert r.verdict == Verdict.REJECT and r.reasons[0].message == "part not found in top view"
    assert fail_closed("x", verdict=Verdict.REVIEW).verdict == Verdict.REVIEW
    with pytest.raises(ValueError):
        fail_closed("x", verdict=Verdict.PASS)


def test_truth_measurements_require_every_dimension():
    with pytest.raises(KeyError, match="thickness"):
        truth_measurements(get_spec(DEF), {k: v for k, v in NOMINAL.items() if k != "thickness"})


@pytest.mark.parametrize(
    ("depth", "verdict"),
    [(0.27, Verdict.PASS), (0.275, Verdict.PASS), (0.29, Verdict.REVIEW), (0.30, Verdict.REVIEW),
     (0.325, Verdict.REVIEW), (0.326, Verdict.REJECT)],
)
def test_defect_sizes_have_a_guard_band_too(depth, verdict):
    """A measured chip depth within its uncertainty (here 0.025 mm) of the 0.30 mm limit is not proven either way."""
    d = _chip(depth=depth).model_copy(update={"uncertainty_mm": 0.025})
    r = judge_truth(get_spec(DEF), NOMINAL, [d])
    assert r.verdict == verdict, [x.message for x in r.reasons]
    if verdict == Verdict.REVIEW:
        assert "within the guard band (U = 0.025 mm) of the limit 0.30 mm" in r.reasons[0].message


def test_a_models_wider_length_band_applies_to_the_length_only():
    """The model's own length uncertainty (0.2 mm) widens the band around the 1.0 mm length limit;
    depth keeps the spec's band."""
    u = {"uncertainty_mm": 0.025, "length_uncertainty_mm": 0.2}
    short = _chip(length=0.85, depth=0.1).model_copy(update=u)  # 0.15 under the limit: not proven good
    r = judge_truth(get_spec(DEF), NOMINAL, [short])
    assert r.verdict == Verdict.REVIEW and "(U = 0.200 mm) of the limit 1.00 mm" in r.reasons[0].message
    assert judge_truth(get_spec(DEF), NOMINAL, [short.model_copy(update={"length_uncertainty_mm": None})]).verdict \
        == Verdict.PASS
    deep = _chip(length=0.5, depth=0.2).model_copy(update=u)  # 0.1 under the depth limit: outside its 0.025 band
    assert judge_truth(get_spec(DEF), NOMINAL, [deep]).verdict == Verdict.PASS
    long = _chip(length=1.25, depth=0.1).model_copy(update=u)
    assert judge_truth(get_spec(DEF), NOMINAL, [long]).verdict == Verdict.REJECT


def test_the_same_defect_kind_in_the_same_place_is_counted_not_repeated():
    crack = Defect(class_name="crack", zone="pole_face", length_mm=0.5, width_mm=0.02, area_mm2=0.01)
    r = judge_truth(get_spec(DEF), NOMINAL, [crack, crack, crack.model_copy(update={"zone": "side_face"})])
    msg = next(x.message for x in r.reasons if x.rule.endswith("max_count"))
    assert msg.startswith("2 × crack on pole face; crack on side face: not allowed"), msg
