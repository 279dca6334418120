import pytest
from pydantic import ValidationError

from magspect.types import Defect, InspectionResult, Measurement, MeasurementStatus, Reason, Verdict


def _m(**kw):
    base = dict(name="length", value=20.01, nominal=20.0, tol_minus=0.05, tol_plus=0.05, uncertainty=0.005,
                status=MeasurementStatus.OK, view="top")
    return Measurement(**{**base, **kw})


def test_result_round_trips_through_its_own_json():
    r = InspectionResult(
        part_id="p1", verdict=Verdict.REJECT,
        reasons=(Reason(rule="dimension.length", verdict=Verdict.REJECT, message="length too long"),),
        defects=(Defect(class_name="chip", zone="edge", length_mm=0.5, width_mm=0.2, depth_mm=0.2, area_mm2=0.1),),
        measurements={"length": _m(), "perpendicularity_deg": _m(name="perpendicularity_deg", unit="deg", value=0.1,
                                                                nominal=0.0, tol_minus=0.0, tol_plus=0.15)},
    )
    text = r.model_dump_json()
    assert '"value_mm":20.01' in text and '"value_deg":0.1' in text
    back = InspectionResult.model_validate_json(text)
    assert back == r


def test_results_validate_on_construction():
    with pytest.raises(ValidationError, match="must not PASS"):
        InspectionResult(verdict=Verdict.PASS, error="camera timeout")
    with pytest.raises(ValidationError, match="needs at least one reason"):
        InspectionResult(verdict=Verdict.REJECT)
    with pytest.raises(ValidationError, match="finite"):
        _m(value=float("nan"))
    with pytest.raises(ValidationError, match="unknown subtype"):
        Defect(class_name="chip", subtype="blister", zone="edge", length_mm=1, width_mm=1, area_mm2=1)
    with pytest.raises(ValidationError):
        Defect(class_name="chip", zone="edge", length_mm=-1, width_mm=1, area_mm2=1)
