from magspect.inspect.gate import judge_truth
from magspect.inspect.subtype import infer_coating_subtype
from magspect.specs import get_spec
from magspect.types import Defect, Verdict


def _flaw(length, width, subtype=None, cls="coating_flaw", zone="pole_face"):
    return Defect(class_name=cls, subtype=subtype, zone=zone, length_mm=length, width_mm=width,
                  area_mm2=length * width)


def test_shape_decides_scratches_only():
    assert infer_coating_subtype(_flaw(2.0, 0.05)).subtype == "scratch"
    assert infer_coating_subtype(_flaw(1.5, 1.0)).subtype is None  # blister? stain? peel? stays unknown
    assert infer_coating_subtype(_flaw(2.0, 0.4)).subtype is None  # too wide for a scratch
    assert infer_coating_subtype(_flaw(0.3, 0.25, subtype="blister")).subtype == "blister"  # never overrides
    chip = Defect(class_name="chip", zone="edge", length_mm=0.3, width_mm=0.3, area_mm2=0.05)
    assert infer_coating_subtype(chip) is chip


def test_a_small_round_flaw_is_judged_as_the_worst_it_could_be_not_as_a_pit():
    """0.15 mm and round on a side face: a pit there is allowed (max 0.2 mm, one), a rust spot or
    blister is not. Shape cannot tell them apart, so the part is rejected."""
    spot = infer_coating_subtype(_flaw(0.15, 0.12, zone="side_face"))
    assert spot.subtype is None
    spec = get_spec("def-blk-20x10x5-nicuni")
    r = judge_truth(spec, spec.nominal_mm(), [spot])
    assert r.verdict == Verdict.REJECT
    assert any("coating flaw of unknown kind on side face: not allowed (rust anywhere: max 0)" in x.message
               for x in r.reasons)
    pit = spot.model_copy(update={"subtype": "pit"})  # what a subtype-aware model could say
    assert judge_truth(spec, spec.nominal_mm(), [pit]).verdict == Verdict.PASS


def test_a_flaw_judged_by_the_strictest_of_its_plausible_subtypes():
    """The subtype classifier's plausible set: only a flaw whose every plausible subtype is allowed
    can pass; one plausible strict subtype rejects, as an unknown flaw does."""
    spec = get_spec("def-blk-20x10x5-nicuni")
    spot = _flaw(0.15, 0.12, zone="side_face")
    pit_or_stain = spot.model_copy(update={"possible_subtypes": ("pit", "stain")})
    assert judge_truth(spec, spec.nominal_mm(), [pit_or_stain]).verdict == Verdict.PASS
    pit_or_rust = spot.model_copy(update={"possible_subtypes": ("pit", "rust")})
    r = judge_truth(spec, spec.nominal_mm(), [pit_or_rust])
    assert r.verdict == Verdict.REJECT
    assert any("coating flaw (pit or rust) on side face: not allowed (rust anywhere: max 0)" in x.message
               for x in r.reasons)
    big = _flaw(0.35, 0.3, zone="side_face").model_copy(update={"possible_subtypes": ("pit", "stain")})
    assert judge_truth(spec, spec.nominal_mm(), [big]).verdict == Verdict.REJECT  # a pit over 0.2 mm


def test_possible_subtypes_must_be_subtypes_of_the_class():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown subtypes"):
        Defect(class_name="coating_flaw", zone="edge", length_mm=0.1, width_mm=0.1, area_mm2=0.01,
               possible_subtypes=("pit", "edge_chip"))
    with pytest.raises(ValidationError, match="at least one"):
        Defect(class_name="coating_flaw", zone="edge", length_mm=0.1, width_mm=0.1, area_mm2=0.01,
               possible_subtypes=())
