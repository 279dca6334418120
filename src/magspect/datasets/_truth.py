"""Truth records: the per-image ``truth.jsonl`` object, defect dicts and the true verdict.

Keys of one image's truth (``RenderedView.truth``; ``truth.jsonl`` adds ``image``, ``class_mask``,
``instance_mask`` file names and the COCO ``image_id``):

- ``part_id``, ``spec_id``, ``spec_version``, ``seed``, ``shape``, ``view`` ("top" | "side")
- ``um_per_px``: the view's exact scale; ``image_hw``: [height, width]
- ``pose``: ``cx_px``, ``cy_px`` (where the part's local origin lies: its centre; for an arc the
  centre of its bounding box, with ``arc_axis_xy_px`` the arc's axis), ``angle_deg`` (the local
  u axis measured from image +x towards +y, i.e. clockwise on screen), ``origin``
- ``dimensions_mm``: every dimension of the part family (``magspect.specs.parts``), true values
- ``defects``: the defects seen in this image (see below); ``part_defects``: count over all views
- ``conforming``: the truth gate's verdict on the whole part is PASS (``judge_truth``, U = 0)
- ``surface``, ``lighting``, ``bit_depth``, ``color`` ("gray" | "bgr"), ``blur_sigma_px``

The part-level truth (``SynthPart.truth``) has the dimensions, all views' defects, ``conforming``,
``verdict`` and the gate's ``reasons`` (messages).

Each defect dict holds every field of :class:`magspect.types.Defect` (so
``Defect(**{k: d[k] for k in Defect.model_fields})`` works) plus ``instance_id``.
``bbox_xyxy_px`` uses the COCO pixel convention: pixel column j spans [j, j + 1), so a defect on
columns 10..12 has x0 = 10, x1 = 13.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from magspect.datasets._defects import DefectGeom
from magspect.specs import Spec
from magspect.types import Defect, GateResult

TRUTH_VERSION = 1


def _judge_truth(spec: Spec, dims: Mapping[str, float], defects: Sequence[Mapping[str, Any]]) -> GateResult:
    from magspect.inspect.gate import judge_truth

    return judge_truth(spec, dims, defects)


def defect_record(d: DefectGeom, inst: int, bbox_xyxy_px: tuple[float, float, float, float]) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "class_name": d.class_name,
        "subtype": d.subtype,
        "zone": d.zone,
        "view": d.view,
        "length_mm": round(d.length_mm, 6),
        "width_mm": round(d.width_mm, 6),
        "depth_mm": round(d.depth_mm, 6),
        "area_mm2": round(d.area_mm2, 6),
        "bbox_xyxy_px": tuple(float(v) for v in bbox_xyxy_px),
        "confidence": 1.0,
        "edge_index": d.edge_index,
        "instance_id": inst,
        "center_mm": [round(float(d.center_mm[0]), 6), round(float(d.center_mm[1]), 6)],
    }
    for name, info in Defect.model_fields.items():  # every Defect field, so Defect(**...) always works
        if name not in rec:
            rec[name] = info.get_default(call_default_factory=True)
    Defect(**{k: rec[k] for k in Defect.model_fields})  # validate now, not in a reader later
    return rec


def bbox_of(instance_mask: np.ndarray, inst: int, roi: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = roi
    ys, xs = np.nonzero(instance_mask[y0:y1, x0:x1] == inst)
    return (float(xs.min() + x0), float(ys.min() + y0), float(xs.max() + x0 + 1), float(ys.max() + y0 + 1))


def verdict(spec: Spec, dims: Mapping[str, float], defects: Sequence[Mapping[str, Any]]) -> tuple[bool, GateResult]:
    res = _judge_truth(spec, dims, defects)
    return res.verdict == "PASS", res


def reasons_list(res: GateResult) -> list[str]:
    return [r.message for r in res.reasons]
