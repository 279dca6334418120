"""The Inspector: the views of one part in, a traceable verdict out. numpy, OpenCV, onnxruntime only.

Pipeline per part: decode -> find the part and measure it (per view) -> model -> defect instances
in mm with zones -> gate -> :class:`~magspect.types.InspectionResult`. Each view goes to the model
as soon as it is measured, on a model thread, so the model works on one view while the next is
measured (onnxruntime releases the GIL); model calls that meet there are batched
(:class:`~magspect.inspect.batching.BatchingSegmenter`).

Fail closed: an unreadable image, an unknown spec, a missing scale, a part that cannot be found or
a model error gives REJECT (or REVIEW where a person can still decide) with the reason: never PASS.
One Inspector serves the CLI, the REST service and the camera station; it is thread-safe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from magspect.inspect.backend import Segmentation, Segmenter, bundled_model_path
from magspect.inspect.batching import BatchingSegmenter
from magspect.inspect.defect_measure import CHIP_JOIN_PX, CRACK_JOIN_PX, measure_defects
from magspect.inspect.gate import assess_dimension, combine, fail_closed, judge
from magspect.inspect.geometry_defects import (
    below_threshold_to_good,
    clear_boxes,
    merge_chips,
    on_part_only,
    silhouette_chips,
)
from magspect.inspect.imageio import ImageError, decode_image
from magspect.inspect.metrology import PartNotFoundError, measure_view
from magspect.inspect.offpart import OFF_PART_RUN_PX, split_lines_off_part
from magspect.inspect.subtype import SubtypeClassifier, SubtypeError, bundled_subtypes_path, infer_coating_subtype
from magspect.inspect.verifier import Verifier, VerifierError, bundled_verifier_path, resolve_verifier
from magspect.inspect.visibility import hidden_surface
from magspect.specs import Spec, SpecError, UnknownSpecError, get_spec
from magspect.types import Defect, InspectionResult, Measurement, ModelRef, Reason, SpecRef, Tta, Verdict

ImageSource = bytes | str | Path | np.ndarray
#: Pixels of context the model gets around the part's outline (defects off the part are dropped).
MODEL_CONTEXT_PX = 32


def _box_holds(mask: np.ndarray, box: tuple[float, float, float, float] | None) -> bool:
    """Does ``mask`` have a pixel inside the pixel box ``x0, y0, x1, y1`` (end exclusive)?"""
    if box is None:
        return False
    x0, y0, x1, y1 = (int(round(b)) for b in box)
    return bool(mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)].any())


class ScaleError(ValueError):
    """No µm/px for a view: the inspection cannot be done in millimetres."""


@dataclass
class ViewArtifacts:
    """What the pipeline saw in one view: for overlays and debugging, not for the record."""

    image: np.ndarray | None = None
    segmentation: Segmentation | None = None
    metrology: Any = None  # MetrologyResult
    error: str | None = None
    dismissed: list[Defect] = field(default_factory=list)  # candidates judged look-alikes (verifier, off-part line)


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
    ``defect_threshold``: a pixel is a defect only where its class probability reaches this (default:
    the model's operating point from its manifest; 0 = plain argmax).
    ``verifier``: the look-alike verifier (:mod:`magspect.inspect.verifier`) that looks again at every
    defect the model reports: a path or :class:`Verifier`; a front light's name (``"darkfield"``) for
    the bundled verifier trained under that light; ``None`` (default) the bundled one when it was
    trained for this model (same sha256), else none; ``False`` or ``"none"`` none.
    ``review_below``: the verifier's review band: a defect it keeps but scores under this can send
    the part to REVIEW only, not REJECT (default: the verifier manifest's ``review_below``; 0: none).
    ``subtypes``: the coating-flaw subtype classifier (:class:`~magspect.inspect.subtype.SubtypeClassifier`)
    that tells a coating flaw's plausible subtypes from how it looks: as ``verifier`` (default the
    bundled one when it was trained for this model; ``False`` or ``"none"`` none: every coating flaw whose shape
    does not say "scratch" is judged as the strictest subtype).
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
        defect_threshold: float | None = None,
        verifier: str | Path | Verifier | Literal[False] | None = None,
        review_below: float | None = None,
        tta: Tta = "none",
        subtypes: str | Path | SubtypeClassifier | Literal[False] | None = None,
        chip_join_px: int = CHIP_JOIN_PX,
        off_part_run_px: float = OFF_PART_RUN_PX,
        crack_join_px: int = CRACK_JOIN_PX,
    ) -> None:
        """``tta``: the model's logits averaged over mirrored copies of each view ("hflip": one
        more model run per view, "flips": three; see :data:`~magspect.inspect.backend.TTA_FLIPS`);
        for a ``segmenter`` passed in, set it there. ``chip_join_px``: chip pieces this close are
        measured as one chip, ``crack_join_px`` crack pieces as one crack
        (:func:`~magspect.inspect.defect_measure.measure_defects`).
        ``off_part_run_px``: a crack candidate whose line runs on this far past the part's outline
        is dismissed as a fibre lying over the edge (:mod:`magspect.inspect.offpart`); 0: never."""
        if segmenter is not None and tta != "none":
            raise ValueError("tta is a Segmenter setting: pass it to the Segmenter you give the Inspector")
        for name, px in (("chip_join_px", chip_join_px), ("crack_join_px", crack_join_px)):
            if px < 0:  # refused before any model is loaded
                raise ValueError(f"{name} must be >= 0, got {px}")
        self.chip_join_px, self.crack_join_px = int(chip_join_px), int(crack_join_px)
        if not off_part_run_px >= 0:
            raise ValueError(f"off_part_run_px must be >= 0, got {off_part_run_px}")
        self.off_part_run_px = float(off_part_run_px)
        if segmenter is None:
            path = model if model is not None else bundled_model_path(int8=int8)
            # the model's idle threads sleep: spinning, they take the cores the metrology of the
            # next view runs on (BENCHMARKS.md, "Inspection end to end")
            # and the class probability is computed where it is read: on defect pixels
            segmenter = Segmenter(path, providers=providers, threads=threads, warmup=True, spin=False,
                                  confidence="defects", tta=tta)
        self.segmenter = segmenter
        # one model run at a time, calls that meet batched; views reach it from the model threads
        self._model = segmenter if isinstance(segmenter, BatchingSegmenter) else BatchingSegmenter(segmenter)
        self._model_pool = ThreadPoolExecutor(max_workers=self._model.max_images, thread_name_prefix="magspect-model")
        manifest = getattr(segmenter, "manifest", None)
        self.defect_threshold = float(
            defect_threshold if defect_threshold is not None else getattr(manifest, "defect_threshold", 0.0)
        )
        if not 0.0 <= self.defect_threshold < 1.0:
            raise ValueError(f"defect_threshold must be in [0, 1), got {self.defect_threshold}")
        self.default_spec = default_spec
        self.calibration = calibration
        self.um_per_px = um_per_px
        if isinstance(verifier, str) and verifier.lower() != "none":  # "darkfield": the bundled dark-field one
            verifier = resolve_verifier(verifier)
        self.verifier = self._companion(verifier, bundled_verifier_path(), Verifier, VerifierError, "verifier")
        self.subtypes = self._companion(subtypes, bundled_subtypes_path(), SubtypeClassifier, SubtypeError,
                                        "subtype classifier")
        if review_below is not None and not 0.0 <= review_below <= 1.0:
            raise ValueError(f"review_below must be in [0, 1], got {review_below}")
        self.review_below = review_below
        # for every result: computed once
        self.verifier_ref, self.subtypes_ref = (
            None if m is None else ModelRef(name=m.name, sha256=m.sha256, provider=m.session.get_providers()[0])
            for m in (self.verifier, self.subtypes)
        )

    @property
    def verifier_review_below(self) -> float | None:
        """The review band in use: the caller's, else the verifier manifest's (None: no band)."""
        return None if self.verifier is None else self.verifier.review_band(self.review_below)

    def _companion(self, given, bundled_path: Path, cls, error: type[Exception], what: str):  # noqa: ANN001, ANN202
        """A model that looks again at this model's candidates (verifier, subtype classifier).
        ``False`` or ``"none"`` (as the CLI, REST and station configs say it): none; ``None``: the
        bundled one if it exists and fits this model; a path or instance of ``cls``: that one, which
        must fit this model."""
        if given is False or (isinstance(given, str) and given.lower() == "none"):
            return None
        bundled = given is None
        if bundled:
            if not bundled_path.is_file():
                return None
            given = bundled_path
        m = given if isinstance(given, cls) else cls(given)
        sha = getattr(self.segmenter, "sha256", None)
        if m.manifest.fits(sha):
            return m
        if bundled:
            return None  # trained on another model's candidates: not used by default
        raise error(
            f"{what} {m.name} was trained on the candidates of model {m.manifest.segmenter_sha256[:12]}…, "
            f"not of this one ({str(sha)[:12]}…): retrain it for this model"
        )

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
        request = PartRequest(views, spec, part_id, um_per_px, calibration, backlights)
        return self.inspect_many([request])[0]

    def inspect_many(self, requests: Sequence[PartRequest]) -> list[Inspection]:
        """Inspect several parts. Never raises; results come back in order.

        Throughput: each view goes to the model as soon as it is measured and the model runs while
        the next views are measured; views that wait for the model together go in one batch
        (same-sized inputs stacked). The per-part work (decode, metrology, defects, gate) runs here.
        """
        out: list[Inspection | None] = [None] * len(requests)
        pending: list[tuple[int, _Pending]] = []
        for i, req in enumerate(requests):
            t_start = time.perf_counter()
            try:
                step = self._prepare(req, t_start)
            except Exception as exc:  # noqa: BLE001 - fail closed on anything unforeseen
                step = self._internal_error(req, t_start, exc)
            if isinstance(step, Inspection):
                out[i] = step
            else:
                pending.append((i, step))
        for i, p in pending:
            try:
                out[i] = self._finish(p)
            except Exception as exc:  # noqa: BLE001
                out[i] = self._internal_error(p.request, p.t_start, exc)
        return out  # type: ignore[return-value]

    def _segment(self, p: _Pending, v: str) -> None:
        """Send view ``v`` to the model now: it looks only where the part is (metrology found it),
        with room for context."""
        roi = p.metro[v].roi_xyxy_px(MODEL_CONTEXT_PX)
        p.model_calls[v] = self._model_pool.submit(self._model.predict_timed, [p.images[v]], 8, [roi])

    # -- pipeline phases -------------------------------------------------------------------
    def _internal_error(self, req: PartRequest, t_start: float, exc: BaseException) -> Inspection:
        message = f"internal error, part not judged: {type(exc).__name__}: {exc}"
        gate = fail_closed(message)
        return Inspection(
            InspectionResult(
                part_id=req.part_id,
                verdict=gate.verdict,
                reasons=gate.reasons,
                views=tuple(req.views),
                timings_ms={"total": round((time.perf_counter() - t_start) * 1e3, 2)},
                error=message,
            )
        )

    def _prepare(self, req: PartRequest, t_start: float) -> Inspection | _Pending:
        """Spec, decode, scale and metrology: a fail-closed Inspection, or a part ready for the model."""
        calibration = req.calibration if req.calibration is not None else self.calibration
        um_per_px = req.um_per_px if req.um_per_px is not None else self.um_per_px
        p = _Pending(self, req, t_start, calibration)
        views = req.views
        try:
            spec = req.spec
            p.spec = spec if isinstance(spec, Spec) else get_spec(spec or self.default_spec or "")
        except (UnknownSpecError, SpecError) as exc:
            return p.closed(f"spec: {exc}")
        if not views:
            return p.closed("no images given for this part")
        unknown = [v for v in views if v not in ("top", "side")]
        if unknown:
            return p.closed(f"unknown view name(s) {unknown}; use 'top' and 'side'")

        t = time.perf_counter()
        for v, src in views.items():
            try:
                p.images[v] = decode_image(src, name=f"{v} view")
            except ImageError as exc:
                p.arts[v].error = str(exc)
                return p.closed(f"image unreadable: {exc}")
            p.arts[v].image = p.images[v]
        metro_images: dict[str, np.ndarray] = dict(p.images)
        for v, src in (req.backlights or {}).items():
            if v not in p.images:
                return p.closed(f"backlight image for view {v!r} but no {v} view")
            try:
                metro_images[v] = decode_image(src, name=f"{v} backlight")
            except ImageError as exc:
                return p.closed(f"image unreadable: {exc}")
            p.backlit.add(v)
            if metro_images[v].shape[:2] != p.images[v].shape[:2]:
                return p.closed(
                    f"{v} backlight is {metro_images[v].shape[1]}x{metro_images[v].shape[0]} px but the {v} view "
                    f"is {p.images[v].shape[1]}x{p.images[v].shape[0]} px: they must come from the same camera"
                )
        p.timings["decode"] = (time.perf_counter() - t) * 1e3

        try:
            scales = {v: _scale_for(v, um_per_px, calibration) for v in p.images}
        except (ScaleError, ValueError) as exc:  # MissingCalibrationError is a ValueError
            return p.closed(f"missing calibration: {exc}", Verdict.REVIEW)
        if calibration is not None:  # pinhole cameras: measure on the undistorted image
            p.images = {v: calibration.undistort(img) for v, img in p.images.items()}
            metro_images = {v: calibration.undistort(img) for v, img in metro_images.items()}

        t = time.perf_counter()
        for v, img in metro_images.items():
            try:
                p.metro[v] = measure_view(img, p.spec, v, scales[v])
            except PartNotFoundError as exc:
                p.arts[v].error = str(exc)
                p.timings["metrology"] = (time.perf_counter() - t) * 1e3
                return p.closed(f"part not found in {v} view: {exc}")
            p.arts[v].metrology = p.metro[v]
            self._segment(p, v)  # the model works on this view while the next one is measured
            hidden = hidden_surface(p.images[v], p.metro[v].part_mask, p.metro[v].roi_xyxy_px(), view=v)
            if hidden:
                p.hidden[v] = hidden
        p.timings["metrology"] = (time.perf_counter() - t) * 1e3
        return p

    def _view_defects(self, p: _Pending, v: str, s: Segmentation) -> tuple[list[Defect], float]:
        """One view's defects in mm with zones (after the verifier), and the verifier's time (ms)."""
        spec, metro = p.spec, p.metro[v]
        n_classes = len(self.segmenter.manifest.classes)
        ideal, roi = metro.ideal_mask(), metro.roi_xyxy_px()
        class_mask = on_part_only(s.class_mask, ideal, roi=roi)  # no defect lies off the part
        conf = s.confidence
        if self.defect_threshold > 0:  # the model's operating point (manifest, or the caller's)
            class_mask = below_threshold_to_good(class_mask, conf, self.defect_threshold, roi)
        chips = None  # material missing from the back-lit silhouette, where there is some
        if v in p.backlit:  # a back-lit silhouette shows every chip's missing material exactly
            chips = silhouette_chips(ideal, metro.part_mask, roi=roi, depth_px=metro.inner_distance_px())
            if chips.any():
                class_mask = merge_chips(class_mask, chips)
                conf = np.where(chips, np.float32(1.0), conf)
            else:
                chips = None
        s = Segmentation(class_mask, conf)
        p.arts[v].segmentation = s
        # on a defect's own pixels its class won the argmax, so the winning-class confidence map
        # is that class's probability there: broadcast it as the (H, W, C) probabilities
        probs = np.broadcast_to(s.confidence[..., None], (*s.confidence.shape, n_classes))
        found = measure_defects(s.class_mask, metro, spec, probs=probs, chip_join_px=self.chip_join_px,
                                crack_join_px=self.crack_join_px)
        dismissed: list[Defect] = []
        tv = time.perf_counter()
        if self.verifier is not None and found:
            # material missing from the back-lit silhouette is no look-alike: a chip it shows is judged as
            # measured whatever the verifier scores it (neither dismissed nor sent to review)
            shown = None if chips is None else [d.class_name == "chip" and _box_holds(chips, d.bbox_xyxy_px)
                                                for d in found]
            found, dismissed = self.verifier.split(p.images[v], s.class_mask, found, self.review_below, spec.id,
                                                   vouched=shown)
        if self.off_part_run_px > 0 and found:  # a crack ends where the part ends; a fibre runs on
            found, off_part = split_lines_off_part(p.images[v], metro.part_mask, s.class_mask, found,
                                                   metro.mm_per_px, self.off_part_run_px)
            dismissed += off_part
        if dismissed:  # the view's mask shows what was judged: look-alikes back to good surface
            p.arts[v].dismissed = dismissed
            p.arts[v].segmentation = Segmentation(
                clear_boxes(s.class_mask, [d.bbox_xyxy_px for d in dismissed], [d.bbox_xyxy_px for d in found]),
                s.confidence,
            )
        verify_ms = (time.perf_counter() - tv) * 1e3
        found = [infer_coating_subtype(d) for d in found]  # shape first: a scratch is a scratch
        if self.subtypes is not None and found:
            tv = time.perf_counter()
            found = self.subtypes.apply(p.images[v], s.class_mask, found)
            verify_ms += (time.perf_counter() - tv) * 1e3
        mm_per_px = metro.mm_per_px
        u_px = spec.decision.defect_uncertainty_px
        out = []
        for d in found:
            u_len_px = self.length_uncertainty_px(spec, d.class_name)
            out.append(d.model_copy(update={
                "uncertainty_mm": u_px * mm_per_px,
                "length_uncertainty_mm": u_len_px * mm_per_px if u_len_px > u_px else None,
            }))
        return out, verify_ms

    def length_uncertainty_px(self, spec: Spec, class_name: str) -> float:
        """The expanded uncertainty (px) of a reported defect's length, for the gate's decision band:
        the larger of the spec's (what its optics resolve) and the model's own, measured on
        validation parts (its manifest's ``defect_length_uncertainty_px``)."""
        model_u = getattr(getattr(self.segmenter, "manifest", None), "defect_length_uncertainty_px", None) or {}
        return max(spec.decision.defect_uncertainty_px, float(model_u.get(class_name, 0.0)))

    def _finish(self, p: _Pending) -> Inspection:
        """Each view's defects in mm with zones as soon as the model has it (the model works on
        the next view meanwhile), then measurements and the gate."""
        spec = p.spec
        assert spec is not None
        defects: list[Defect] = []
        model_s = verify_ms = defects_ms = 0.0
        for v in p.images:
            try:
                (seg,), s = p.model_calls[v].result()
            except Exception as exc:  # noqa: BLE001 - a model failure rejects the part
                return p.closed(f"model failed: {type(exc).__name__}: {exc}")
            model_s += s
            t = time.perf_counter()
            found, ms = self._view_defects(p, v, seg)
            defects_ms += (time.perf_counter() - t) * 1e3
            defects.extend(found)
            verify_ms += ms
        p.timings["model"] = model_s * 1e3  # the model's run time for this part's views
        if self.verifier is not None or self.subtypes is not None:
            p.timings["verify"] = verify_ms  # the second looks: verifier and subtype classifier
        p.timings["defects"] = defects_ms

        # dimensions -> measurements; a dimension whose view was not given stays not measured
        measurements: dict[str, Measurement] = {}
        for d in spec.family.dimensions:
            m = p.metro.get(d.view)
            value = None if m is None else m.values.get(d.name)
            measurements[d.name] = assess_dimension(spec, d.name, value, view=d.view)

        t = time.perf_counter()
        gate = judge(spec, measurements, defects)
        if p.hidden:  # a surface nobody could see is not shown to be good: never PASS
            gate = combine(
                [
                    *gate.reasons,
                    *(Reason(rule="inspection.surface_not_visible", verdict=Verdict.REVIEW, message=m)
                      for m in p.hidden.values()),
                ]
            )
        p.timings["gate"] = (time.perf_counter() - t) * 1e3
        p.timings["total"] = (time.perf_counter() - p.t_start) * 1e3
        result = InspectionResult(
            part_id=p.request.part_id,
            verdict=gate.verdict,
            reasons=gate.reasons,
            defects=tuple(defects),
            measurements=measurements,
            spec=SpecRef(id=spec.id, version=spec.version),
            model=self.model_ref,
            verifier=self.verifier_ref,
            subtypes=self.subtypes_ref,
            dismissed=tuple(d for a in p.arts.values() for d in a.dismissed),
            calibration_id=getattr(p.calibration, "id", None),
            views=tuple(p.request.views),
            timings_ms={k: round(v, 2) for k, v in p.timings.items()},
        )
        return Inspection(result, p.arts)


@dataclass
class PartRequest:
    """One part to inspect: its views and how to judge them (see :meth:`Inspector.inspect_detailed`)."""

    views: Mapping[str, ImageSource]
    spec: str | Spec | None = None
    part_id: str | None = None
    um_per_px: float | Mapping[str, float] | None = None
    calibration: Any = None
    backlights: Mapping[str, ImageSource] | None = None


@dataclass
class _Pending:
    """A part between metrology and the model."""

    inspector: Inspector
    request: PartRequest
    t_start: float
    calibration: Any
    spec: Spec | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)
    metro: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    arts: dict[str, ViewArtifacts] = field(default_factory=dict)
    backlit: set[str] = field(default_factory=set)  # views measured on a back-lit image
    hidden: dict[str, str] = field(default_factory=dict)  # views whose surface cannot be seen -> why
    model_calls: dict[str, Future] = field(default_factory=dict)  # view -> ([Segmentation], seconds)

    def __post_init__(self) -> None:
        self.arts = {v: ViewArtifacts() for v in self.request.views}

    def closed(self, message: str, verdict: Verdict = Verdict.REJECT) -> Inspection:
        for call in self.model_calls.values():  # views already sent: their answer is not needed
            call.cancel()
        gate = fail_closed(message, verdict=verdict)
        self.timings["total"] = (time.perf_counter() - self.t_start) * 1e3
        res = InspectionResult(
            part_id=self.request.part_id,
            verdict=gate.verdict,
            reasons=gate.reasons,
            spec=SpecRef(id=self.spec.id, version=self.spec.version) if self.spec else None,
            model=self.inspector.model_ref,
            calibration_id=getattr(self.calibration, "id", None),
            views=tuple(self.request.views),
            timings_ms={k: round(v, 2) for k, v in self.timings.items()},
            error=message,
        )
        return Inspection(res, self.arts)
