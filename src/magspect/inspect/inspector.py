"""The Inspector: the views of one part in, a traceable verdict out. numpy, OpenCV, onnxruntime only.

Pipeline per part: decode -> find the part and measure it (per view) -> model (all views batched)
-> defect instances in mm with zones -> gate -> :class:`~magspect.types.InspectionResult`.

Fail closed: an unreadable image, an unknown spec, a missing scale, a part that cannot be found or
a model error gives REJECT (or REVIEW where a person can still decide) with the reason: never PASS.
One Inspector serves the CLI, the REST service and the camera station; it is thread-safe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from magspect.inspect.backend import ModelError, Segmentation, Segmenter
from magspect.inspect.gate import assess_dimension, fail_closed, judge
from magspect.inspect.imageio import ImageError, decode_image
from magspect.inspect.subtype import infer_coating_subtype
from magspect.specs import Spec, SpecError, UnknownSpecError, get_spec
from magspect.types import Defect, InspectionResult, Measurement, ModelRef, SpecRef, Verdict

ImageSource = bytes | str | Path | np.ndarray


class ScaleError(ValueError):
    """No µm/px for a view: the inspection cannot be done in millimetres."""


@dataclass
class ViewArtifacts:
    """What the pipeline saw in one view: for overlays and debugging, not for the record."""

    image: np.ndarray | None = None
    segmentation: Segmentation | None = None
    metrology: Any = None  # MetrologyResult
    error: str | None = None


@dataclass
class Inspection:
    """An InspectionResult with the images and masks behind it."""

    result: InspectionResult
    views: dict[str, ViewArtifacts] = field(default_factory=dict)


def _scale_for(view: str, um_per_px: float | Mapping[str, float] | None, calibration: Any) -> float:
    if um_per_px is not None:
        value = um_per_px.get(view) if isinstance(um_per_px, Mapping) else um_per_px
        if value is not None:
            if not (value > 0 and np.isfinite(value)):
                raise ScaleError(f"{view} view: µm/px must be a positive number, got {value!r}")
            return float(value)
    if calibration is not None:
        return float(calibration.scale_um_per_px(view))  # raises MissingCalibrationError
    raise ScaleError(f"{view} view: no calibration and no µm/px given, so nothing can be measured in mm")


class Inspector:
    """Loads an ONNX model and inspects parts against specs.

    ``model``: path to an exported ONNX (its embedded manifest says how to feed it), default the
    bundled FP32 model (``int8=True``: the bundled INT8 one). ``providers``: execution providers,
    short (``cuda``, ``tensorrt``, ``openvino``, ``cpu``) or full names; default the best installed.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        int8: bool = False,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        default_spec: str | None = None,
        calibration: Any = None,
        um_per_px: float | Mapping[str, float] | None = None,
        segmenter: Segmenter | None = None,
    ) -> None:
        if segmenter is None:
            from magspect.inspect.backend import bundled_model_path

            path = model if model is not None else bundled_model_path(int8=int8)
            segmenter = Segmenter(path, providers=providers, threads=threads, warmup=True)
        self.segmenter = segmenter
        self.default_spec = default_spec
        self.calibration = calibration
        self.um_per_px = um_per_px

    @property
    def model_ref(self) -> ModelRef:
        s = self.segmenter
        return ModelRef(name=s.name, sha256=s.sha256, provider=s.provider)

    # -- public API ------------------------------------------------------------------------
    def inspect(
        self,
        views: Mapping[str, ImageSource],
        *,
        spec: str | Spec | None = None,
        part_id: str | None = None,
        um_per_px: float | Mapping[str, float] | None = None,
        calibration: Any = None,
        backlights: Mapping[str, ImageSource] | None = None,
    ) -> InspectionResult:
        return self.inspect_detailed(
            views, spec=spec, part_id=part_id, um_per_px=um_per_px, calibration=calibration, backlights=backlights
        ).result

    def inspect_detailed(
        self,
        views: Mapping[str, ImageSource],
        *,
        spec: str | Spec | None = None,
        part_id: str | None = None,
        um_per_px: float | Mapping[str, float] | None = None,
        calibration: Any = None,
        backlights: Mapping[str, ImageSource] | None = None,
    ) -> Inspection:
        """Inspect one part given its views (``{"top": ..., "side": ...}``). Never raises.

        ``backlights``: optional back-lit images of the same views (same camera, same pose), used
        for the dimensions, as metrology practice demands; without one a view is measured on its
        front-lit image, whose dark chamfers and shadows can bias edges.
        """
        t_start = time.perf_counter()
        try:
            return self._inspect(views, spec, part_id, um_per_px, calibration, t_start, backlights or {})
        except Exception as exc:  # noqa: BLE001 - fail closed on anything unforeseen, with the reason
            message = f"internal error, part not judged: {type(exc).__name__}: {exc}"
            gate = fail_closed(message)
            return Inspection(
                InspectionResult(
                    part_id=part_id,
                    verdict=gate.verdict,
                    reasons=gate.reasons,
                    views=tuple(views),
                    timings_ms={"total": round((time.perf_counter() - t_start) * 1e3, 2)},
                    error=message,
                )
            )

    def _inspect(self, views, spec, part_id, um_per_px, calibration, t_start, backlights) -> Inspection:  # noqa: ANN001
        """The pipeline; expected failures return a fail-closed Inspection."""
        timings: dict[str, float] = {}
        arts: dict[str, ViewArtifacts] = {v: ViewArtifacts() for v in views}
        calibration = calibration if calibration is not None else self.calibration
        um_per_px = um_per_px if um_per_px is not None else self.um_per_px
        cal_id = getattr(calibration, "id", None)
        view_names = tuple(views)

        def closed(message: str, verdict: Verdict = Verdict.REJECT, spec_obj: Spec | None = None) -> Inspection:
            gate = fail_closed(message, verdict=verdict)
            timings["total"] = (time.perf_counter() - t_start) * 1e3
            res = InspectionResult(
                part_id=part_id,
                verdict=gate.verdict,
                reasons=gate.reasons,
                spec=SpecRef(id=spec_obj.id, version=spec_obj.version) if spec_obj else None,
                model=self.model_ref,
                calibration_id=cal_id,
                views=view_names,
                timings_ms={k: round(v, 2) for k, v in timings.items()},
                error=message,
            )
            return Inspection(res, arts)

        # spec
        try:
            spec_obj = spec if isinstance(spec, Spec) else get_spec(spec or self.default_spec or "")
        except (UnknownSpecError, SpecError) as exc:
            return closed(f"spec: {exc}")
        if not views:
            return closed("no images given for this part", spec_obj=spec_obj)
        unknown = [v for v in views if v not in ("top", "side")]
        if unknown:
            return closed(f"unknown view name(s) {unknown}; use 'top' and 'side'", spec_obj=spec_obj)

        # decode
        t = time.perf_counter()
        images: dict[str, np.ndarray] = {}
        for v, src in views.items():
            try:
                images[v] = decode_image(src, name=f"{v} view")
            except ImageError as exc:
                arts[v].error = str(exc)
                timings["decode"] = (time.perf_counter() - t) * 1e3
                return closed(f"image unreadable: {exc}", spec_obj=spec_obj)
            arts[v].image = images[v]
        metro_images: dict[str, np.ndarray] = dict(images)
        for v, src in backlights.items():
            if v not in images:
                return closed(f"backlight image for view {v!r} but no {v} view", spec_obj=spec_obj)
            try:
                metro_images[v] = decode_image(src, name=f"{v} backlight")
            except ImageError as exc:
                return closed(f"image unreadable: {exc}", spec_obj=spec_obj)
            if metro_images[v].shape[:2] != images[v].shape[:2]:
                return closed(
                    f"{v} backlight is {metro_images[v].shape[1]}x{metro_images[v].shape[0]} px but the {v} view "
                    f"is {images[v].shape[1]}x{images[v].shape[0]} px: they must come from the same camera",
                    spec_obj=spec_obj,
                )
        timings["decode"] = (time.perf_counter() - t) * 1e3

        # scale
        try:
            scales = {v: _scale_for(v, um_per_px, calibration) for v in images}
        except (ScaleError, ValueError) as exc:  # MissingCalibrationError is a ValueError
            return closed(f"missing calibration: {exc}", Verdict.REVIEW, spec_obj)
        if calibration is not None:  # pinhole cameras: measure on the undistorted image
            images = {v: calibration.undistort(img) for v, img in images.items()}
            metro_images = {v: calibration.undistort(img) for v, img in metro_images.items()}

        # metrology: find the part in every view
        from magspect.inspect.metrology import PartNotFoundError, measure_view

        t = time.perf_counter()
        metro: dict[str, Any] = {}
        for v, img in metro_images.items():
            try:
                metro[v] = measure_view(img, spec_obj, v, scales[v])
            except PartNotFoundError as exc:
                arts[v].error = str(exc)
                timings["metrology"] = (time.perf_counter() - t) * 1e3
                return closed(f"part not found in {v} view: {exc}", spec_obj=spec_obj)
            arts[v].metrology = metro[v]
        timings["metrology"] = (time.perf_counter() - t) * 1e3

        # model, all views in one batched call
        t = time.perf_counter()
        try:
            segs = self.segmenter.predict([images[v] for v in images])
        except (ModelError, ValueError, RuntimeError) as exc:
            return closed(f"model failed: {exc}", spec_obj=spec_obj)
        timings["model"] = (time.perf_counter() - t) * 1e3
        for v, s in zip(images, segs, strict=True):
            arts[v].segmentation = s

        # defects in mm, with zones
        from magspect.inspect.defect_measure import measure_defects

        t = time.perf_counter()
        defects: list[Defect] = []
        for v, s in zip(images, segs, strict=True):
            # on a defect's own pixels its class won the argmax, so the winning-class confidence map
            # is that class's probability there: broadcast it as the (H, W, C) probabilities
            n_classes = len(self.segmenter.manifest.classes)
            probs = np.broadcast_to(s.confidence[..., None], (*s.confidence.shape, n_classes))
            found = measure_defects(s.class_mask, metro[v], spec_obj, probs=probs)
            u_mm = spec_obj.decision.defect_uncertainty_px * metro[v].mm_per_px
            defects.extend(infer_coating_subtype(d).model_copy(update={"uncertainty_mm": u_mm}) for d in found)
        timings["defects"] = (time.perf_counter() - t) * 1e3

        # dimensions -> measurements; a dimension whose view was not given stays not measured
        measurements: dict[str, Measurement] = {}
        for d in spec_obj.family.dimensions:
            m = metro.get(d.view)
            value = None if m is None else m.values.get(d.name)
            measurements[d.name] = assess_dimension(spec_obj, d.name, value, view=d.view)

        t = time.perf_counter()
        gate = judge(spec_obj, measurements, defects)
        timings["gate"] = (time.perf_counter() - t) * 1e3
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        result = InspectionResult(
            part_id=part_id,
            verdict=gate.verdict,
            reasons=gate.reasons,
            defects=tuple(defects),
            measurements=measurements,
            spec=SpecRef(id=spec_obj.id, version=spec_obj.version),
            model=self.model_ref,
            calibration_id=cal_id,
            views=view_names,
            timings_ms={k: round(v, 2) for k, v in timings.items()},
        )
        return Inspection(result, arts)
