"""Shared by the operating-point sweeps: inspect a split's parts once, then re-judge them with a
subset of their reported defects (the gate is cheap; the model and metrology are not)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Judged:
    spec: Any
    measurements: dict
    defects: tuple
    hidden: list  # surface-not-visible reasons: REVIEW whatever the defects
    truth: Any  # Verdict
    inspection: Any  # the Inspection (images and masks), for scoring its defects


def inspect_split(
    insp: Any, split: str, n: int, suite: str = "magsynth-v2", lighting: str | None = None,
    spec: str | None = None,
) -> Iterator[Judged]:
    """The first ``n`` parts of a suite's split through ``insp``; ``lighting``: every view under this
    front light instead of the suite's draw (the same parts, as ``magspect evaluate --lighting``);
    ``spec``: only the parts of this spec among them."""
    from magspect.datasets import generate_part, get_suite
    from magspect.inspect.evaluate import true_verdict_of
    from magspect.specs import get_spec

    s = get_suite(suite)
    cfg = s.config(split, light=lighting)
    for spec_id, seed in s.parts(split, n):
        if spec is not None and spec_id != spec:
            continue
        part = generate_part(spec_id, seed, cfg)
        t = part.truth
        ins = insp.inspect_detailed(
            {v: rv.image for v, rv in part.views.items()},
            spec=t["spec_id"],
            part_id=str(t["part_id"]),
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            backlights={v: rv.backlight for v, rv in part.views.items() if rv.backlight is not None},
        )
        r = ins.result
        hidden = [x for x in r.reasons if x.rule == "inspection.surface_not_visible"]
        yield Judged(get_spec(t["spec_id"]), r.measurements, r.defects, hidden, true_verdict_of(t), ins)


def rejudge(
    parts: list[Judged], keep: Callable[[int, Any], bool], change: Callable[[Any], Any] | None = None
) -> tuple[float, float, float, float]:
    """(escape, false-reject, review rates, dismissed per 100 parts) when only the defects for which
    ``keep(part_index, defect)`` holds are judged, each passed through ``change`` first if given."""
    from magspect.inspect.gate import combine, judge
    from magspect.types import Verdict

    esc = fr = rev = n_bad = n_good = gone = 0
    for i, p in enumerate(parts):
        kept = [d for d in p.defects if keep(i, d)]
        if change is not None:
            kept = [change(d) for d in kept]
        gone += len(p.defects) - len(kept)
        g = judge(p.spec, p.measurements, kept)
        v = combine([*g.reasons, *p.hidden]).verdict if p.hidden else g.verdict
        if p.truth != Verdict.PASS:
            n_bad += 1
            esc += v == Verdict.PASS
        else:
            n_good += 1
            fr += v == Verdict.REJECT
        rev += v == Verdict.REVIEW
    n = max(len(parts), 1)
    return esc / max(n_bad, 1), fr / max(n_good, 1), rev / n, 100 * gone / n


def replay(ev: dict, verifier: str | None = None) -> tuple[Any, Any]:
    """What the parts of a ``magspect evaluate --json`` file ``ev`` are re-inspected with: the suite
    split's generator config under the evaluation's lighting, and the verifier it used (``verifier``,
    a file; else the bundled one, or a light's bundled one, whose sha256 the evaluation names).
    Raises SystemExit when the evaluation's verifier is not one of those and none is given."""
    from magspect.datasets import get_suite
    from magspect.inspect.backend import sha256_file
    from magspect.inspect.verifier import bundled_verifier_lightings, bundled_verifier_path

    light = ev.get("lighting")
    cfg = get_suite(ev["suite"]).config(ev["split"], light=None if light in (None, "suite") else light)
    if verifier is not None:
        return cfg, verifier
    used = (ev.get("verifier") or {}).get("sha256")
    if used is None:
        return cfg, False  # evaluated without one
    for name in (None, *bundled_verifier_lightings()):
        if sha256_file(bundled_verifier_path(name)) == used:
            return cfg, bundled_verifier_path(name)
    raise SystemExit(f"the evaluation used verifier {used[:12]}…, not a bundled one: give it with --verifier FILE")
