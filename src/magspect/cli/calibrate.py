"""``magspect calibrate``: camera intrinsics or telecentric scale from target images → calib.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)


def calibrate_cmd(
    images: Annotated[list[Path], typer.Argument(help="Images of the calibration target.")],
    out: Annotated[Path, typer.Option("--out", help="Calibration file to write (JSON).")],
    pattern: Annotated[str, typer.Option("--pattern", help="chessboard or charuco.")] = "chessboard",
    cols: Annotated[int, typer.Option(help="Chessboard: inner corners across; ChArUco: squares across.")] = 9,
    rows: Annotated[int, typer.Option(help="Chessboard: inner corners down; ChArUco: squares down.")] = 6,
    square_mm: Annotated[float, typer.Option("--square-mm", help="Square side (mm).")] = 5.0,
    marker_mm: Annotated[float | None, typer.Option("--marker-mm", help="ChArUco marker side (mm).")] = None,
    dictionary: Annotated[str, typer.Option(help="ChArUco ArUco dictionary.")] = "DICT_5X5_100",
    telecentric: Annotated[
        bool, typer.Option("--telecentric/--pinhole", help="Scale (µm/px) of a telecentric view, or intrinsics.")
    ] = False,
    view: Annotated[str, typer.Option(help="View the telecentric scale belongs to (top or side).")] = "top",
    merge: Annotated[
        Path | None, typer.Option("--merge", help="Start from this calibration file and add/replace.")
    ] = None,
) -> None:
    """Calibrate from images of a chessboard or ChArUco board and write a calibration file."""
    from magspect.inspect.calibration import Calibration, CalibrationError, calibrate_camera, telecentric_calibration
    from magspect.inspect.calibration import merge as merge_cal
    from magspect.inspect.imageio import ImageError, read_image

    if pattern not in ("chessboard", "charuco"):
        fail(f"--pattern must be chessboard or charuco, got {pattern!r}")
    if view not in ("top", "side"):
        fail(f"--view must be top or side, got {view!r}")
    try:
        imgs = [read_image(p) for p in images]
        base = Calibration.load(merge) if merge is not None else None
        kw = dict(pattern=pattern, cols=cols, rows=rows, square_mm=square_mm, marker_mm=marker_mm,
                  dictionary=dictionary)
        cal = telecentric_calibration({view: imgs}, **kw) if telecentric else calibrate_camera(imgs, **kw)
    except (ImageError, CalibrationError) as exc:
        fail(str(exc))
    if base is not None:
        cal = merge_cal(base, cal)
    cal.save(out)
    console.print(f"calibration [bold]{cal.id}[/] written to {out}", highlight=False)
    if cal.rms_reprojection_px is not None:
        rms = cal.rms_reprojection_px
        console.print(f"  reprojection rms {rms:.3f} px over {cal.n_images} images", highlight=False)
    for v, s in cal.um_per_px.items():
        console.print(f"  {v}: {s:.4f} µm/px (± {cal.um_per_px_std.get(v, 0.0):.4f} over images)", highlight=False)
