"""``magspect measure``: dimensions of parts from back-lit images, in mm, against a spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("measure")(measure_cmd)


def _view_for(path: Path, view: str | None) -> str:
    if view is not None:
        return view
    return "side" if path.stem.lower().endswith("_side") else "top"


def measure_cmd(
    images: Annotated[list[Path], typer.Argument(help="Back-lit images, one part each.")],
    spec: Annotated[str, typer.Option("--spec", help="Spec id (see `magspect specs list`) or a spec YAML file.")],
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="Calibration file from `magspect calibrate`.")
    ] = None,
    um_per_px: Annotated[
        float | None, typer.Option("--um-per-px", help="Scale (telecentric); overrides the calibration's.")
    ] = None,
    view: Annotated[
        str | None, typer.Option("--view", help="top or side (default: side for *_side.* files, else top).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="JSON: one object per image (one line each).")] = False,
) -> None:
    """Measure every dimension a view shows; exit 1 if any image could not be measured."""
    from magspect.inspect.calibration import Calibration, CalibrationError, MissingCalibrationError
    from magspect.inspect.imageio import ImageError, read_image
    from magspect.inspect.metrology import PartNotFoundError, measure_view, not_measured, to_measurements
    from magspect.specs import SpecError, UnknownSpecError, get_spec

    if view is not None and view not in ("top", "side"):
        fail(f"--view must be top or side, got {view!r}")
    if um_per_px is not None and not um_per_px > 0:
        fail(f"--um-per-px must be positive, got {um_per_px}")
    try:
        spec_obj = get_spec(spec)
    except (UnknownSpecError, SpecError) as exc:
        fail(str(exc))
    cal = None
    if calibration is not None:
        try:
            cal = Calibration.load(calibration)
        except CalibrationError as exc:
            fail(str(exc))
    if cal is None and um_per_px is None:
        fail("no scale: give --calibration FILE (from `magspect calibrate`) or --um-per-px X; "
             "nothing is measured without one")

    failures = 0
    for path in images:
        v = _view_for(path, view)
        record: dict = {"image": str(path), "spec": spec_obj.id, "view": v, "calibration_id": cal.id if cal else None}
        try:
            scale = um_per_px if um_per_px is not None else cal.scale_um_per_px(v)
        except MissingCalibrationError as exc:
            fail(str(exc))
        record["um_per_px"] = scale
        error = None
        try:
            img = read_image(path)
            if cal is not None:
                img = cal.undistort(img)
            result = measure_view(img, spec_obj, v, scale)
            measurements = to_measurements(result, spec_obj)
        except (ImageError, PartNotFoundError) as exc:
            error = str(exc)
            measurements = not_measured(spec_obj, v)
            failures += 1
        record["measurements"] = {k: m.model_dump(mode="json") for k, m in measurements.items()}
        record["error"] = error
        if json_out:
            typer.echo(json.dumps(record))
        else:
            _print_table(path, v, scale, measurements, error)
    if failures:
        raise typer.Exit(1)


def _print_table(path: Path, view: str, scale: float, measurements: dict, error: str | None) -> None:
    from rich.table import Table

    from magspect.types import MeasurementStatus

    style = {MeasurementStatus.OK: "green", MeasurementStatus.GUARD_BAND: "yellow",
             MeasurementStatus.OUT_OF_TOLERANCE: "bold red", MeasurementStatus.NOT_MEASURED: "red"}
    table = Table(title=f"{path.name} ({view} view, {scale:g} µm/px)")
    for col in ("dimension", "value", "nominal", "limits", "U (k=2)", "status"):
        table.add_column(col, justify="left" if col in ("dimension", "status") else "right")
    for name, m in measurements.items():
        value = "—" if m.value is None else f"{m.value:.4f}"
        table.add_row(
            name, f"{value} {m.unit}", f"{m.nominal:g}", f"{m.lower:g} … {m.upper:g}", f"{m.uncertainty:g}",
            f"[{style[m.status]}]{m.status.value}[/]",
        )
    console.print(table)
    if error:
        console.print(f"[bold red]not measured:[/] {error}", highlight=False)
