"""The gate: spec + measurements + defects -> PASS, REJECT or REVIEW, rule by rule.

Decision rule (ISO 14253-1): a dimension conforms only when it lies inside its limits shrunk by the
expanded measurement uncertainty U (the guard band); it is nonconforming only when it lies outside
its limits widened by U; anything in between is sent to REVIEW. Defect limits are inclusive: a chip
exactly at the limit passes. A defect the model is unsure of (confidence below the spec's
``min_confidence``) can send a part to REVIEW, never to REJECT or PASS on its own.

The same gate, applied to the generator's exact truth with U = 0 (``judge_truth``), gives each
synthetic part its true verdict; escape and false-reject rates are measured against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from magspect.specs import DefectRule, Spec
from magspect.types import Defect, GateResult, Measurement, MeasurementStatus, Reason, Verdict

_EPS = 1e-9  # mm (or deg): far below any measurement resolution, far above float rounding

_LIMITS: tuple[tuple[str, str, str], ...] = (
    # (rule field, defect attribute, words)
    ("max_length_mm", "length_mm", "length"),
    ("max_width_mm", "width_mm", "width"),
    ("max_depth_mm", "depth_mm", "depth"),
    ("max_area_mm2", "area_mm2", "area"),
)


def _unit_words(unit: str) -> str:
    return "mm" if unit == "mm" else "deg"


def _fmt(value: float, unit: str) -> str:
    return f"{value:.3f} mm" if unit == "mm" else f"{value:.3f} deg"


def assess_dimension(
    spec: Spec,
    name: str,
    value: float | None,
    uncertainty: float | None = None,
    view: str | None = None,
) -> Measurement:
    """Turn a measured value into a Measurement with its status under the spec's decision rule.

    ``uncertainty`` is the expanded uncertainty U in the dimension's unit; None takes the spec's
    (``decision.uncertainty_mm`` or ``uncertainty_deg``). With ``guard_band: false`` the limits are
    applied as drawn, but U is still reported.
    """
    if name not in spec.dimensions:
        raise KeyError(f"spec {spec.id} has no dimension {name!r}; it has {sorted(spec.dimensions)}")
    dim = spec.dimensions[name]
    ddef = spec.family.dimension(name)
    unit = ddef.unit
    if uncertainty is None:
        uncertainty = spec.decision.uncertainty_mm if unit == "mm" else spec.decision.uncertainty_deg
    band = uncertainty if spec.decision.guard_band else 0.0
    one_sided = ddef.kind == "form"
    if value is None:
        status = MeasurementStatus.NOT_MEASURED
    else:
        lower, upper = dim.lower, dim.upper
        # limits are inclusive; _EPS keeps "exactly at the limit" exact despite binary floats
        too_low = (not one_sided) and value < lower - band - _EPS
        too_high = value > upper + band + _EPS
        proven_low = one_sided or value >= lower + band - _EPS
        proven_high = value <= upper - band + _EPS
        if too_low or too_high:
            status = MeasurementStatus.OUT_OF_TOLERANCE
        elif proven_low and proven_high:
            status = MeasurementStatus.OK
        else:
            status = MeasurementStatus.GUARD_BAND
    return Measurement(
        name=name,
        unit=unit,
        value=value,
        nominal=dim.nominal,
        tol_minus=dim.tol_minus,
        tol_plus=dim.tol_plus,
        uncertainty=uncertainty,
        status=status,
        view=view or ddef.view,  # type: ignore[arg-type]
    )


def _dimension_reasons(spec: Spec, measurements: Mapping[str, Measurement]) -> list[Reason]:
    reasons: list[Reason] = []
    for ddef in spec.family.dimensions:
        name = ddef.name
        m = measurements.get(name)
        rule = f"dimension.{name}"
        if m is None or m.status == MeasurementStatus.NOT_MEASURED or m.value is None:
            reasons.append(
                Reason(rule=rule, verdict=Verdict.REVIEW, message=f"{name} not measured ({ddef.view} view)")
            )
            continue
        unit = m.unit
        limits = f"{_fmt(m.lower, unit)} .. {_fmt(m.upper, unit)}" if ddef.kind == "size" else (
            f"<= {_fmt(m.upper, unit)}"
        )
        if m.status == MeasurementStatus.OUT_OF_TOLERANCE:
            if m.value > m.upper:
                words, limit = f"> upper limit {_fmt(m.upper, unit)}", m.upper
            else:
                words, limit = f"< lower limit {_fmt(m.lower, unit)}", m.lower
            reasons.append(
                Reason(
                    rule=rule,
                    verdict=Verdict.REJECT,
                    message=f"{name} {_fmt(m.value, unit)} {words} (nominal {m.nominal:g}, limits {limits})",
                    measured=m.value,
                    limit=limit,
                )
            )
        elif m.status == MeasurementStatus.GUARD_BAND:
            near = m.upper if abs(m.value - m.upper) <= abs(m.value - m.lower) or ddef.kind == "form" else m.lower
            reasons.append(
                Reason(
                    rule=rule,
                    verdict=Verdict.REVIEW,
                    message=(
                        f"{name} {_fmt(m.value, unit)} is within the guard band "
                        f"(U = {m.uncertainty:.3f} {_unit_words(unit)}) of the limit {_fmt(near, unit)}"
                    ),
                    measured=m.value,
                    limit=near,
                )
            )
    return reasons


def _where(d: Defect) -> str:
    # a coating flaw whose kind the model cannot tell is judged as every kind it could be: say so
    what = d.class_name
    if d.class_name == "coating_flaw":
        what = d.subtype or (f"coating flaw ({' or '.join(d.possible_subtypes)})" if d.possible_subtypes
                             else "coating flaw of unknown kind")
    zone = d.zone.replace("_", " ")
    place = f"{zone} {d.edge_index}" if d.edge_index is not None and d.zone in ("edge", "corner") else zone
    prep = "at" if d.zone == "corner" else "on"
    view = f" ({d.view} view)" if d.view == "side" else ""
    return f"{what} {prep} {place}{view}"


def _matches(rule: DefectRule, d: Defect) -> bool:
    # A defect whose subtype the model could not tell matches every rule of its class, or of the
    # subtypes it could be (``possible_subtypes``): the strictest reading, so an unknown coating flaw
    # is judged as the worst subtype it could be.
    if d.class_name != rule.class_name or d.zone not in rule.zones:
        return False
    if rule.subtype is None or rule.subtype == d.subtype:
        return True
    return d.subtype is None and (d.possible_subtypes is None or rule.subtype in d.possible_subtypes)


def _rule_words(rule: DefectRule) -> str:
    what = rule.subtype or rule.class_name.replace("_", " ")
    zones = "anywhere" if len(rule.zones) == 4 else "on " + "/".join(z.replace("_", " ") for z in rule.zones)
    return f"{what} {zones}"


def _defect_reasons(spec: Spec, defects: Sequence[Defect]) -> list[Reason]:
    reasons: list[Reason] = []
    min_conf = spec.decision.min_confidence
    covered = [False] * len(defects)
    for rule in spec.defects:
        matched = [(i, d) for i, d in enumerate(defects) if _matches(rule, d)]
        for i, _ in matched:
            covered[i] = True
        sure = [d for _, d in matched if _doubt(d, min_conf) is None]
        unsure = [d for _, d in matched if _doubt(d, min_conf) is not None]
        # per-instance limits
        for d in sure + unsure:
            why = _doubt(d, min_conf)
            verdict = Verdict.REJECT if why is None else Verdict.REVIEW
            doubt = "" if why is None else f" ({why}: review)"
            for field, attr, words in _LIMITS:
                limit = getattr(rule, field)
                if limit is None:
                    continue
                value = getattr(d, attr)
                u = 0.0
                if spec.decision.guard_band and value is not None:
                    u = d.uncertainty_mm
                    if attr == "length_mm" and d.length_uncertainty_mm is not None:
                        u = d.length_uncertainty_mm  # the model's own length sizing, measured
                    if attr == "area_mm2":  # a band of width u around the outline
                        u = 2.0 * (value**0.5) * u + u * u
                if value is None:
                    reasons.append(
                        Reason(
                            rule=f"{rule.rule_id}.{field}",
                            verdict=Verdict.REVIEW,
                            message=f"{_where(d)}: {words} not measured, limit {limit:.2f}",
                            limit=limit,
                        )
                    )
                elif value > limit + u + _EPS:
                    unit = "mm²" if attr == "area_mm2" else "mm"
                    reasons.append(
                        Reason(
                            rule=f"{rule.rule_id}.{field}",
                            verdict=verdict,
                            message=f"{_where(d)}: {words} {value:.2f} {unit} > {limit:.2f} {unit}{doubt}",
                            measured=value,
                            limit=limit,
                        )
                    )
                elif value > limit - u + _EPS:
                    unit = "mm²" if attr == "area_mm2" else "mm"
                    reasons.append(
                        Reason(
                            rule=f"{rule.rule_id}.{field}",
                            verdict=Verdict.REVIEW,
                            message=(
                                f"{_where(d)}: {words} {value:.2f} {unit} is within the guard band "
                                f"(U = {u:.3f} {unit}) of the limit {limit:.2f} {unit}"
                            ),
                            measured=value,
                            limit=limit,
                        )
                    )
        # count and cumulative limits
        if rule.max_count is not None:
            for group, verdict in ((sure, Verdict.REJECT), (sure + unsure, Verdict.REVIEW)):
                n = len(group)
                if n > rule.max_count:
                    if rule.max_count == 0:
                        places = dict.fromkeys(_where(d) for d in group)  # in order, each once
                        counts = [sum(_where(d) == w for d in group) for w in places]
                        where = "; ".join(f"{n} × {w}" if n > 1 else w for w, n in zip(places, counts, strict=True))
                        msg = f"{where}: not allowed ({_rule_words(rule)}: max 0)"
                    else:
                        msg = f"{n} × {_rule_words(rule)} > {rule.max_count} allowed"
                    if verdict == Verdict.REVIEW:
                        doubts = "; ".join(dict.fromkeys(str(_doubt(d, min_conf)) for d in unsure))
                        msg += f" (counting unsure calls: {doubts}: review)"
                    reasons.append(
                        Reason(
                            rule=f"{rule.rule_id}.max_count",
                            verdict=verdict,
                            message=msg,
                            measured=float(n),
                            limit=float(rule.max_count),
                        )
                    )
                    break
        for field, attr, words, unit in (
            ("max_total_length_mm", "length_mm", "total length", "mm"),
            ("max_total_area_mm2", "area_mm2", "total area", "mm²"),
        ):
            limit = getattr(rule, field)
            if limit is None:
                continue
            for group, verdict in ((sure, Verdict.REJECT), (sure + unsure, Verdict.REVIEW)):
                total = sum(getattr(d, attr) for d in group)
                if total > limit + _EPS:
                    reasons.append(
                        Reason(
                            rule=f"{rule.rule_id}.{field}",
                            verdict=verdict,
                            message=f"{_rule_words(rule)}: {words} {total:.2f} {unit} > {limit:.2f} {unit}",
                            measured=total,
                            limit=limit,
                        )
                    )
                    break
    for i, d in enumerate(defects):
        if not covered[i]:
            reasons.append(
                Reason(
                    rule=f"defect.{d.class_name}.uncovered",
                    verdict=Verdict.REVIEW,
                    message=f"{_where(d)}: no rule in spec {spec.id} covers it",
                )
            )
    return reasons


def _doubt(d: Defect, min_confidence: float) -> str | None:
    """Why a reported defect can only send its part to REVIEW (None: it is sure enough to reject)."""
    if d.review_reason:
        return d.review_reason
    if d.confidence < min_confidence:
        return f"model confidence {d.confidence:.2f}"
    return None


def combine(reasons: Iterable[Reason]) -> GateResult:
    """REJECT if any rule rejects, else REVIEW if any rule asks for review, else PASS."""
    reasons = tuple(reasons)
    if any(r.verdict == Verdict.REJECT for r in reasons):
        verdict = Verdict.REJECT
    elif reasons:
        verdict = Verdict.REVIEW
    else:
        verdict = Verdict.PASS
    # REJECT reasons first, then REVIEW, each in rule order
    ordered = tuple(sorted(reasons, key=lambda r: r.verdict != Verdict.REJECT))
    return GateResult(verdict=verdict, reasons=ordered)


def judge(spec: Spec, measurements: Mapping[str, Measurement], defects: Sequence[Defect]) -> GateResult:
    """Judge one part: every dimension of its family and every defect against the spec."""
    return combine([*_dimension_reasons(spec, measurements), *_defect_reasons(spec, defects)])


def fail_closed(message: str, rule: str = "inspection.incomplete", verdict: Verdict = Verdict.REJECT) -> GateResult:
    """The verdict for an inspection that could not be completed: never PASS."""
    if verdict == Verdict.PASS:
        raise ValueError("fail_closed never returns PASS")
    return GateResult(verdict=verdict, reasons=(Reason(rule=rule, verdict=verdict, message=message),))


def truth_measurements(spec: Spec, dimensions_mm: Mapping[str, float]) -> dict[str, Measurement]:
    """The generator's exact dimensions as measurements with zero uncertainty."""
    missing = [n for n in spec.family.names if n not in dimensions_mm]
    if missing:
        raise KeyError(f"truth for spec {spec.id} lacks dimensions {missing}")
    return {n: assess_dimension(spec, n, float(dimensions_mm[n]), uncertainty=0.0) for n in spec.family.names}


def _as_defect(d: Defect | Mapping[str, Any]) -> Defect:
    if isinstance(d, Defect):
        return d
    fields = Defect.model_fields
    return Defect(**{k: v for k, v in d.items() if k in fields})


def judge_truth(
    spec: Spec, dimensions_mm: Mapping[str, float], defects: Iterable[Defect | Mapping[str, Any]]
) -> GateResult:
    """The true verdict of a synthetic part: the gate on exact truth, U = 0, confidence 1."""
    return judge(spec, truth_measurements(spec, dimensions_mm), [_as_defect(d) for d in defects])
