"""``measure_view``: one image of one part in one view → dimensions in mm/deg."""

from __future__ import annotations

import numpy as np

from magspect.inspect.metrology._fit import FitError
from magspect.inspect.metrology._result import MetrologyResult
from magspect.inspect.metrology._shapes import measure_arc, measure_disc, measure_quad, measure_ring
from magspect.inspect.metrology._silhouette import PartNotFoundError, find_part
from magspect.specs import Spec, get_spec
from magspect.types import Measurement, View


def _spec(spec: Spec | str) -> Spec:
    return spec if isinstance(spec, Spec) else get_spec(spec)


def measure_view(image: np.ndarray, spec: Spec | str, view: View, um_per_px: float) -> MetrologyResult:
    """Measure every dimension of ``spec``'s shape that ``view`` shows.

    ``image`` is a back-lit (or otherwise high-contrast) image of one whole part, (H, W) or
    (H, W, C), any dtype. ``um_per_px`` is the calibrated scale of this view (telecentric).
    Raises :class:`PartNotFoundError` when no whole part can be measured.
    """
    if not (um_per_px > 0 and np.isfinite(um_per_px)):
        raise ValueError(f"um_per_px must be a positive number, got {um_per_px!r}")
    if view not in ("top", "side"):
        raise ValueError(f"view must be 'top' or 'side', got {view!r}")
    spec = _spec(spec)
    try:
        return _measure(image, spec, view, float(um_per_px))
    except (FitError, np.linalg.LinAlgError) as exc:  # degenerate geometry: fail closed, never a number
        raise PartNotFoundError(f"part not measurable as a {spec.part.shape} ({view} view): {exc}") from exc


def _measure(image: np.ndarray, spec: Spec, view: View, um_per_px: float) -> MetrologyResult:
    shape = spec.part.shape
    mm = um_per_px / 1000.0
    sil = find_part(image)

    if view == "side":
        values_px, outline, edges, corners, rms, extras = measure_quad(sil)
        if shape == "arc":
            # the station images the segment's axis along the image's y axis (chord along x)
            along_y = values_px["sides_24_px"] if values_px["sides_24_along_y"] else values_px["sides_13_px"]
            values = {"length": along_y * mm}
        else:
            values = {"thickness": values_px["short_px"] * mm}
        extras = {**extras, "long_mm": values_px["long_px"] * mm, "short_mm": values_px["short_px"] * mm}
    elif shape == "block":
        chamfer_px = spec.dimensions["chamfer"].nominal / mm
        values_px, outline, edges, corners, rms, extras = measure_quad(sil, chamfer_hint_px=chamfer_px)
        values = {
            "length": values_px["long_px"] * mm,
            "width": values_px["short_px"] * mm,
            "chamfer": values_px["chamfer_px"] * mm,
            "perpendicularity_deg": values_px["perpendicularity_deg"],
        }
    elif shape == "disc":
        values_px, outline, edges, corners, rms, extras = measure_disc(sil)
        values = {"diameter": values_px["diameter_px"] * mm}
    elif shape == "ring":
        values_px, outline, edges, corners, rms, extras = measure_ring(sil)
        values = {k.removesuffix("_px"): v * mm for k, v in values_px.items()}
    elif shape == "arc":
        values_px, outline, edges, corners, rms, extras = measure_arc(sil)
        values = {
            "outer_radius": values_px["outer_radius_px"] * mm,
            "inner_radius": values_px["inner_radius_px"] * mm,
            "thickness": (values_px["outer_radius_px"] - values_px["inner_radius_px"]) * mm,
            "chord": values_px["chord_px"] * mm,
            "angle_deg": values_px["angle_deg"],
        }
    else:  # pragma: no cover - the schema admits only the four shapes
        raise ValueError(f"no metrology for shape {shape!r}")
    return MetrologyResult(
        shape=shape, view=view, um_per_px=float(um_per_px), values=values,
        ideal_outline_xy_px=outline, edges=edges, corners_xy_px=np.asarray(corners, float),
        contour_xy_px=sil.contour_xy_px, part_mask=sil.mask, residual_rms_px=rms,
        extras={**extras, "saturated_fraction": sil.saturated_fraction},
    )


def to_measurements(result: MetrologyResult, spec: Spec | str) -> dict[str, Measurement]:
    """Each measured value against the drawing, through the gate's ``assess_dimension``."""
    from magspect.inspect.gate import assess_dimension

    spec = _spec(spec)
    return {name: assess_dimension(spec, name, float(v), None, result.view) for name, v in result.values.items()}


def not_measured(spec: Spec | str, view: View) -> dict[str, Measurement]:
    """NOT_MEASURED entries for every dimension ``view`` shows (fail closed: never OK)."""
    from magspect.inspect.gate import assess_dimension

    spec = _spec(spec)
    return {d.name: assess_dimension(spec, d.name, None, None, view) for d in spec.family.dimensions
            if d.view == view}


__all__ = ["PartNotFoundError", "measure_view", "not_measured", "to_measurements"]
