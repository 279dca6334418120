"""``magspect inspect``: images of parts in, verdicts, overlays and an HTML report out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import (
    ReviewBelowOpt,
    SubtypesOpt,
    Tta,
    TtaOpt,
    VerifierOpt,
    console,
    err_console,
    fail,
)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)


def inspect_cmd(
    paths: Annotated[
        list[Path], typer.Argument(help="Images or folders. <part>_top.png + <part>_side.png = one part.")
    ],
    spec: Annotated[str, typer.Option("--spec", help="Spec id (see `magspect specs list`) or a spec YAML file.")],
    model: Annotated[Path | None, typer.Option(help="ONNX model (default: the bundled model).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the bundled INT8 model.")] = False,
    calibration: Annotated[Path | None, typer.Option(help="Calibration file from `magspect calibrate`.")] = None,
    um_per_px: Annotated[float | None, typer.Option("--um-per-px", help="Scale for every view (telecentric).")] = None,
    providers: Annotated[str | None, typer.Option(help="Execution providers, e.g. 'cuda,cpu'.")] = None,
    verifier: VerifierOpt = None,
    review_below: ReviewBelowOpt = None,
    tta: TtaOpt = Tta.none,
    subtypes: SubtypesOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print results as JSON (one object per part).")] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
    overlays: Annotated[Path | None, typer.Option(help="Write overlay PNGs into this folder.")] = None,
) -> None:
    """Inspect parts: find defects, measure dimensions and judge each part against the spec."""
    import cv2

    from magspect.inspect.backend import ModelError
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.parts_input import PartsInputError, collect_parts
    from magspect.inspect.report import ReportEntry, draw_overlay, write_html_report
    from magspect.inspect.subtype import SubtypeError
    from magspect.inspect.verifier import VerifierError
    from magspect.specs import SpecError, UnknownSpecError, get_spec
    from magspect.types import Verdict

    try:
        spec_obj = get_spec(spec)
    except (UnknownSpecError, SpecError) as exc:
        fail(str(exc))
    try:
        parts = collect_parts(paths)
    except PartsInputError as exc:
        fail(str(exc))
    n_second = sum(len(p.second_lights) for p in parts)
    if n_second:
        err_console.print(f"[dim]{n_second} second-light image(s) (<part>_<view>_coaxial|dome|darkfield) left out: "
                          "the inspection judges each view's first image[/]")
    cal = None
    if calibration is not None:
        from magspect.inspect.calibration import Calibration

        try:
            cal = Calibration.load(calibration)
        except (OSError, ValueError) as exc:
            fail(f"{calibration}: cannot load calibration: {exc}")
    try:
        inspector = Inspector(
            model, int8=int8, providers=providers.split(",") if providers else None, calibration=cal,
            verifier=verifier, review_below=review_below, subtypes=subtypes,
            tta=tta.value,
        )
    except (ModelError, VerifierError, SubtypeError) as exc:
        fail(str(exc))

    entries = []
    results = []
    for part in parts:
        scale = um_per_px if um_per_px is not None else (part.um_per_px or None)
        if cal is None and um_per_px is None and part.um_per_px and not json_out:
            console.print(f"[dim]{part.part_id}: scale from the generator's truth.jsonl[/]")
        insp = inspector.inspect_detailed(
            dict(part.views), spec=spec_obj, part_id=part.part_id, um_per_px=scale, backlights=part.backlights
        )
        r = insp.result
        results.append(r)
        ov = {}
        for v, art in insp.views.items():
            if art.image is None:
                continue
            outline = art.metrology.ideal_outline_xy_px[0] if art.metrology is not None else None
            cm = art.segmentation.class_mask if art.segmentation is not None else None
            ov[v] = draw_overlay(art.image, cm, r, view=v, outline_px=outline)
            if overlays is not None:
                overlays.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(overlays / f"{part.part_id}_{v}_overlay.png"), ov[v])
        truth_v = None
        if part.truth:
            conforming = all(t.get("conforming", True) for t in part.truth.values())
            truth_v = Verdict.PASS if conforming else Verdict.REJECT
        entries.append(ReportEntry(r, ov, truth_v, source=str(next(iter(part.views.values())))))
        if json_out:
            typer.echo(json.dumps(r.model_dump(mode="json")))
        else:
            colour = {"PASS": "green", "REJECT": "red", "REVIEW": "yellow"}[r.verdict.value]
            ms = r.timings_ms.get("total", 0)
            console.print(f"[bold]{part.part_id}[/]: [{colour}]{r.verdict.value}[/]  ({ms:.0f} ms)")
            for reason in r.reasons:
                console.print(f"    {reason.verdict.value}: {reason.message}", highlight=False)
    if report is not None:
        write_html_report(entries, report, title=f"magspect inspection: {spec_obj.id}")
        if not json_out:
            console.print(f"report: {report}")
