"""``magspect specs list | show ID | validate FILE...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, err_console, fail

specs_app = typer.Typer(help="Part specs: list the bundled ones, show one, validate spec files.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(specs_app, name="specs")


@specs_app.command("list")
def list_cmd(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """The bundled specs."""
    from rich.table import Table

    from magspect.specs import list_specs

    specs = list_specs()
    if json_out:
        typer.echo(json.dumps([{"id": s.id, "version": s.version, "shape": s.part.shape, "grade": s.grade,
                                "title": s.title} for s in specs]))
        return
    table = Table(title="bundled specs")
    for col in ("id", "version", "shape", "grade", "title"):
        table.add_column(col)
    for s in specs:
        table.add_row(s.id, str(s.version), s.part.shape, s.grade, s.title)
    console.print(table)


@specs_app.command("show")
def show_cmd(spec: Annotated[str, typer.Argument(help="Spec id or a spec YAML file.")],
             json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """One spec: dimensions, zones, decision rule and defect limits."""
    from rich.table import Table

    from magspect.specs import SpecError, UnknownSpecError, get_spec

    try:
        s = get_spec(spec)
    except (UnknownSpecError, SpecError) as exc:
        fail(str(exc))
    if json_out:
        typer.echo(s.model_dump_json(by_alias=True, indent=2))
        return
    console.print(f"[bold]{s.id}[/] v{s.version}: {s.title} ({s.grade}, {s.part.shape}, {s.part.coating})",
                  highlight=False)
    dims = Table(title="dimensions")
    for col in ("name", "view", "nominal", "−tol", "+tol"):
        dims.add_column(col)
    for d in s.family.dimensions:
        ds = s.dimensions[d.name]
        dims.add_row(d.name, d.view, f"{ds.nominal:g} {d.unit}", f"{ds.tol_minus:g}", f"{ds.tol_plus:g}")
    console.print(dims)
    console.print(f"zones: edge band {s.zones.edge_band_mm} mm, corner radius {s.zones.corner_radius_mm} mm; "
                  f"decision: guard band {s.decision.guard_band}, U = {s.decision.uncertainty_mm} mm / "
                  f"{s.decision.uncertainty_deg} deg", highlight=False)
    rules = Table(title="defect rules")
    for col in ("rule", "limits", "note"):
        rules.add_column(col)
    for r in s.defects:
        limits = ", ".join(f"{k.removeprefix('max_')} ≤ {v:g}" for k, v in r.model_dump().items()
                           if k.startswith("max_") and v is not None)
        rules.add_row(r.rule_id, limits, r.note or "")
    console.print(rules)


@specs_app.command("validate")
def validate_cmd(files: Annotated[list[Path], typer.Argument(help="Spec YAML files.")]) -> None:
    """Check spec files; errors name the file, line and field. Exit 1 if any file is invalid."""
    from magspect.specs import SpecError, load_spec_file

    bad = 0
    for f in files:
        try:
            s = load_spec_file(f)
        except SpecError as exc:
            bad += 1
            err_console.print(str(exc), highlight=False, soft_wrap=True, markup=False)
            continue
        console.print(f"ok: {f} ({s.id} v{s.version}, {s.part.shape})", highlight=False)
    if bad:
        raise typer.Exit(1)
