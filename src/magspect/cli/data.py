"""``magspect data check PATH [--class-map FILE]``: validate real labelled data before retraining."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail

data_app = typer.Typer(help="Real labelled data: check mask folders and COCO exports.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("check")
def check_cmd(
    path: Annotated[Path, typer.Argument(help="mask folder (per-label or images/ + masks/) or COCO .json")],
    class_map: Annotated[Path | None, typer.Option(help="YAML label -> class map (needed for COCO)")] = None,
    image_root: Annotated[Path | None, typer.Option(help="COCO: folder of the images, if not beside the JSON")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="also show the content-hash split")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON here")] = None,
) -> None:
    """Counts per label and class, sizes, warnings (empty masks); every error at once (exit 1)."""
    from magspect.datasets.labelled import ClassMap, LabelledDataError
    from magspect.training.realdata import data_report, guess_kind, open_labelled, split_by_content

    kind = guess_kind(path)
    try:
        cmap = ClassMap.from_file(class_map) if class_map else None
        data = open_labelled(kind, path, cmap, image_root)
    except LabelledDataError as exc:
        fail(str(exc), code=1)
    rep = {"path": str(path), "kind": kind, **data_report(data)}
    if val_fraction is not None:
        try:
            rep["split"] = split_by_content(data, val_fraction).as_dict()
        except (ValueError, LabelledDataError) as exc:
            fail(str(exc), code=1)
    console.print(f"{path} ({kind}): {rep['n_images']} images, {rep['n_defective']} with defects; "
                  f"sizes {rep['width_px_range']} x {rep['height_px_range']} px (w x h)")
    for k, v in rep["per_label"].items():
        console.print(f"  label {k:20s} {v}")
    for k, v in rep["per_target"].items():
        console.print(f"  class {k:20s} {v}")
    if "split" in rep:
        s = rep["split"]
        console.print(f"  split: {s['n_train']} train ({s['n_train_defective']} defective), {s['n_val']} validation "
                      f"({s['n_val_defective']} defective); val sha256 {s['val_sha256'][:12]}")
    for w in rep["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", highlight=False)
    console.print("OK" if not rep["warnings"] else f"OK with {len(rep['warnings'])} warning(s)")
    if json_out is not None:
        json_out.write_text(json.dumps(rep, indent=2), encoding="utf-8")
