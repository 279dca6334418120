from magspect.inspect.subtype import infer_coating_subtype
from magspect.types import Defect


def _flaw(length, width, subtype=None, cls="coating_flaw"):
    return Defect(class_name=cls, subtype=subtype, zone="pole_face", length_mm=length, width_mm=width,
                  area_mm2=length * width)


def test_shape_decides_scratch_and_pit_only():
    assert infer_coating_subtype(_flaw(2.0, 0.05)).subtype == "scratch"
    assert infer_coating_subtype(_flaw(0.3, 0.25)).subtype == "pit"
    assert infer_coating_subtype(_flaw(1.5, 1.0)).subtype is None  # blister? stain? peel? stays unknown
    assert infer_coating_subtype(_flaw(2.0, 0.4)).subtype is None  # too wide for a scratch
    assert infer_coating_subtype(_flaw(0.3, 0.25, subtype="blister")).subtype == "blister"  # never overrides
    chip = Defect(class_name="chip", zone="edge", length_mm=0.3, width_mm=0.3, area_mm2=0.05)
    assert infer_coating_subtype(chip) is chip
