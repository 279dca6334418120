"""``magspect synth``: write a synthetic dataset (images, masks, annotations.json, truth.jsonl)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail

_OPTION = {
    "size_px": "--size", "bit_depth": "--bit-depth", "color": "--color", "lighting": "--lighting",
    "surface": "--surface", "um_per_px": "--um-per-px", "defects": "--no-defects", "force_defect": "--force-defect",
    "nuisances": "--no-nuisances", "noise": "--no-noise", "blur": "--no-noise", "vignetting": "--no-noise",
    "exposure_jitter": "--no-noise", "views": "--view",
}


def register(app: typer.Typer) -> None:
    app.command("synth")(synth_cmd)


def synth_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output folder (must be empty unless --overwrite).")],
    n: Annotated[
        int, typer.Option("--n", help="Number of parts (one image per view); with --suite: train/val parts.")
    ] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first part; part i uses seed + i.")] = 0,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="Spec id (repeat for several; default: all bundled).")
    ] = None,
    view: Annotated[list[str] | None, typer.Option("--view", help="top or side (repeatable; default both).")] = None,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 1024,
    bit_depth: Annotated[int, typer.Option("--bit-depth", help="8 or 16 (gray).")] = 8,
    color: Annotated[bool, typer.Option("--color/--gray", help="8-bit BGR colour or grayscale.")] = False,
    lighting: Annotated[
        str | None, typer.Option("--lighting", help="coaxial, dome, darkfield or backlight (default: drawn).")
    ] = None,
    surface: Annotated[
        str | None, typer.Option("--surface", help="NiCuNi, Zn, epoxy, phosphate, uncoated (default: spec's).")
    ] = None,
    um_per_px: Annotated[float | None, typer.Option("--um-per-px", help="Scale (default: part fills 80 %).")] = None,
    defects: Annotated[bool, typer.Option("--defects/--no-defects")] = True,
    force_defect: Annotated[
        str | None, typer.Option("--force-defect", help="crack, chip, coating_flaw or class/subtype.")
    ] = None,
    nuisances: Annotated[bool, typer.Option("--nuisances/--no-nuisances")] = True,
    noise: Annotated[bool, typer.Option("--noise/--no-noise", help="Sensor noise, blur, vignetting.")] = True,
    backlight: Annotated[
        bool, typer.Option("--backlight/--no-backlight", help="Also write a back-lit image per view (metrology).")
    ] = True,
    second_lighting: Annotated[
        str | None,
        typer.Option("--second-lighting", help="Also write each view under this second front light "
                     "(coaxial, dome or darkfield): the same surface, pose and defects lit another way."),
    ] = None,
    coco: Annotated[str, typer.Option("--coco", help="COCO segmentation: polygon or rle.")] = "polygon",
    suite: Annotated[
        str | None, typer.Option("--suite", help="A named split recipe, e.g. magsynth-v3 (with --split).")
    ] = None,
    split: Annotated[str | None, typer.Option("--split", help="train, val or test (with --suite).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Write into a non-empty folder.")] = False,
) -> None:
    """Generate synthetic magnet images with exact ground truth."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from magspect.datasets import SynthConfig, write_dataset
    from magspect.datasets._splits import get_suite
    from magspect.datasets._writer import spec_for_seed
    from magspect.specs import UnknownSpecError, get_spec, list_specs

    if n < 1:
        fail(f"--n must be at least 1, got {n}")
    if coco not in ("polygon", "rle"):
        fail(f"--coco must be polygon or rle, got {coco!r}")
    if out.exists() and not out.is_dir():
        fail(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        fail(f"{out} is not empty; choose an empty folder or pass --overwrite")
    noise_kw = {} if noise else {"noise": False, "blur": False, "vignetting": False, "exposure_jitter": 0.0}
    kw = dict(
        size_px=size, bit_depth=bit_depth, color=color, lighting=lighting, surface=surface, um_per_px=um_per_px,
        defects=defects, force_defect=force_defect, nuisances=nuisances, **noise_kw,
    )
    if view:
        kw["views"] = tuple(view)
    if suite is not None or split is not None:
        if suite is None or split is None:
            fail("--suite and --split go together (e.g. --suite magsynth-v3 --split test)")
        try:
            s = get_suite(suite)
            parts = s.parts(split, limit=None if split == "test" else n)
            base = s.config(split)
        except KeyError as exc:
            fail(str(exc.args[0]))
        changed = sorted({_OPTION.get(k, k) for k, v in kw.items() if v != getattr(SynthConfig(), k)})
        if changed:
            fail(f"--suite fixes the recipe; do not combine it with {', '.join(changed)}")
        config = base
        description = f"{suite} {split}"
    else:
        try:
            spec_ids = [get_spec(x).id for x in spec] if spec else [sp.id for sp in list_specs()]
        except UnknownSpecError as exc:
            fail(str(exc))
        try:
            config = SynthConfig(**kw)  # type: ignore[arg-type]
        except ValueError as exc:
            fail(str(exc))
        parts = [(spec_for_seed(seed + i, spec_ids), seed + i) for i in range(n)]
        description = f"magspect synth --n {n} --seed {seed}"
    try:  # companion images: the recipe's images stay the same
        config = config.with_(backlight=backlight, second_lighting=second_lighting)
    except ValueError as exc:
        fail(str(exc))
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), console=console, transient=False,
    ) as progress:
        task = progress.add_task("synth", total=len(parts))
        try:
            counts = write_dataset(out, parts, config, coco_format=coco, overwrite=overwrite,
                                   description=description, on_part=lambda k: progress.update(task, completed=k))
        except (FileExistsError, ValueError) as exc:
            fail(str(exc))
    console.print(
        f"wrote {counts['images']} images of {counts['parts']} parts ({counts['nonconforming']} nonconforming, "
        f"{counts['defects']} defects) to {out}"
    )
