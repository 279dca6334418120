"""``magspect export CKPT --out model.onnx [--int8]``: ONNX + manifest, parity-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        checkpoint: Annotated[Path, typer.Argument(help="training checkpoint (best.pt / last.pt)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write")],
        int8: Annotated[bool, typer.Option("--int8", help="also write <out>-int8.onnx (static QDQ)")] = False,
        parity_views: Annotated[int, typer.Option(min=1, help="validation views for the parity check")] = 4,
        calib_views: Annotated[int, typer.Option(min=1, help="synthetic training views to calibrate INT8")] = 32,
        min_int8_agreement: Annotated[float, typer.Option(help="fail if INT8/FP32 argmax agreement is lower")] = 0.99,
        int8_views: Annotated[
            int, typer.Option(min=1, help="validation views INT8 is compared with FP32 on (agreement, defect "
                              "instances lost)")] = 32,
        recalibrate_bn: Annotated[
            int, typer.Option(min=0, help="first re-estimate BatchNorm statistics on N whole synthetic views")
        ] = 0,
    ) -> None:
        """Export a checkpoint to one self-contained ONNX (opset 18) with its manifest."""
        try:
            import torch  # noqa: F401
        except ImportError:
            fail("export needs PyTorch: pip install 'magspect[train]'")
        from magspect.training.export import ExportError, export_from_checkpoint

        if not checkpoint.is_file():
            fail(f"checkpoint not found: {checkpoint}")
        if out.suffix != ".onnx":
            fail(f"--out must end in .onnx: {out}")
        if recalibrate_bn:
            from magspect.training.bn import recalibrate_checkpoint

            recal = out.with_name(out.stem + ".bn-recalibrated.pt")
            n = recalibrate_checkpoint(str(checkpoint), str(recal), n_views=recalibrate_bn)
            console.print(f"BatchNorm statistics re-estimated on {n} whole synthetic views -> {recal}")
            checkpoint = recal
        try:
            report = export_from_checkpoint(
                checkpoint,
                out,
                int8=int8,
                parity_views=parity_views,
                calib_views=calib_views,
                min_int8_agreement=min_int8_agreement,
                int8_views=int8_views,
                log=console.print,
            )
        except ExportError as exc:
            for line in exc.report.lines() if exc.report is not None else []:
                console.print(line)
            fail(str(exc), code=3)
        for line in report.lines():
            console.print(line)
