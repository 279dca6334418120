"""``magspect export CKPT --out model.onnx [--int8]``: ONNX + manifest, parity-checked.
``magspect quantize MODEL.onnx --config RECIPE --out model-int8.onnx``: INT8 from an FP32 export
(the bundled one included, whose checkpoint is not shipped), calibrated and compared as ``export
--int8`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail, load_config
from magspect.training.quantize import CALIB_PERCENTILE, MIN_INT8_AGREEMENT  # numpy only: --help stays fast

# the INT8 options export and quantize share
CalibViewsOpt = Annotated[int, typer.Option(min=1, help="synthetic training views to calibrate INT8 on (2 crops each)")]
Int8ViewsOpt = Annotated[int, typer.Option(
    min=1, help="validation views INT8 is compared with FP32 on (agreement, defect instances lost)")]
MinAgreementOpt = Annotated[float, typer.Option(help="fail if INT8/FP32 argmax agreement is lower")]
PERCENTILE_HELP = "cut each activation's range at this percentile of its calibration histogram"


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize_cmd)

    @app.command()
    def export(
        checkpoint: Annotated[Path, typer.Argument(help="training checkpoint (best.pt / last.pt)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write")],
        int8: Annotated[bool, typer.Option("--int8", help="also write <out>-int8.onnx (static QDQ)")] = False,
        parity_views: Annotated[int, typer.Option(min=1, help="validation views for the parity check")] = 4,
        calib_views: CalibViewsOpt = 32,
        min_int8_agreement: MinAgreementOpt = MIN_INT8_AGREEMENT,
        int8_views: Int8ViewsOpt = 32,
        int8_percentile: Annotated[float, typer.Option(help=PERCENTILE_HELP)] = CALIB_PERCENTILE,
        recalibrate_bn: Annotated[
            int, typer.Option(min=0, help="first re-estimate BatchNorm statistics on N whole synthetic views")
        ] = 0,
    ) -> None:
        """Export a checkpoint to one self-contained ONNX (opset 18) with its manifest."""
        _need_torch("export")
        from magspect.training.export import ExportError, export_from_checkpoint

        _input_and_out(checkpoint, "checkpoint", out)
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
                int8_percentile=int8_percentile,
                log=console.print,
            )
        except ExportError as exc:
            for line in exc.report.lines() if exc.report is not None else []:
                console.print(line)
            fail(str(exc), code=3)
        for line in report.lines():
            console.print(line)


def quantize_cmd(
    model: Annotated[Path, typer.Argument(help="an FP32 magspect model (.onnx with its manifest)")],
    config: Annotated[Path, typer.Option("--config", "-c", help=(
        "the training recipe (YAML) MODEL was trained with: its data stream calibrates, its validation "
        "source is compared on"))],
    out: Annotated[Path, typer.Option("--out", "-o", help="INT8 ONNX file to write")],
    calib_views: CalibViewsOpt = 32,
    percentile: Annotated[float, typer.Option(help=PERCENTILE_HELP)] = CALIB_PERCENTILE,
    int8_views: Int8ViewsOpt = 32,
    min_int8_agreement: MinAgreementOpt = MIN_INT8_AGREEMENT,
) -> None:
    """Quantise an FP32 export to INT8 (static QDQ), compare it with FP32, embed its manifest.

    Then give it its own sizing band (`magspect calibrate-sizing OUT --out ...`) and link the
    verifier and subtype classifier to it (`magspect tune-verifier ... --also-for ...`)."""
    _need_torch("quantize")
    from magspect.inspect.backend import ModelError, Segmenter
    from magspect.training.config import TrainConfig
    from magspect.training.export import ExportError
    from magspect.training.quantize import calibration_inputs, comparison_views, int8_from_fp32
    from magspect.training.validate import load_val_views

    _input_and_out(model, "model", out)
    if out.resolve() == model.resolve():
        fail("write the INT8 model to a new path (--out), not over MODEL")
    if not config.is_file():  # before the model is opened: all argument errors first
        fail(f"config file not found: {config}")
    if not 50.0 < percentile <= 100.0:
        fail(f"--percentile must be in (50, 100], got {percentile}")
    try:
        manifest = Segmenter(model, warmup=False).manifest
    except ModelError as exc:
        fail(str(exc))
    if manifest.precision != "fp32":
        fail(f"{model} is already {manifest.precision}: quantise its FP32 model")
    cfg = load_config(TrainConfig, config)
    if cfg.val.source == "none":
        fail(f"{config}: val.source is 'none'; INT8 is compared with FP32 on validation views")
    console.print(f"rendering {calib_views} calibration views and {int8_views} validation views ({cfg.val.source})")
    calib = calibration_inputs(cfg, calib_views, manifest.in_channels)
    views = load_val_views(cfg.model_copy(update={"val": cfg.val.model_copy(update={"n_parts": int8_views})}))
    cmp_views = comparison_views(views, manifest.in_channels, manifest.input_multiple)
    try:
        rep = int8_from_fp32(model, out, manifest, calib, cmp_views, percentile=percentile,
                             min_agreement=min_int8_agreement)
    except ExportError as exc:
        fail(str(exc), code=3)
    console.print(
        f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; {len(calib)} calibration crops, percentile {percentile:g}): "
        f"INT8 vs FP32 argmax agreement {100 * rep['int8_vs_fp32_argmax_agreement']:.3f} % (defect or not "
        f"{100 * rep['int8_vs_fp32_defect_agreement']:.3f} %), defect instance recall "
        f"{rep['defect_recall_fp32']:.3f} (FP32) -> {rep['defect_recall_int8']:.3f} (INT8) over "
        f"{int(rep['n_truth_instances'])} instances"
    )
    console.print(f"next: magspect calibrate-sizing {out} --out SIZED.onnx, then link the verifier "
                  "(magspect tune-verifier VERIFIER --also-for SIZED.onnx --out ...)")


def _need_torch(verb: str) -> None:
    """Fail clearly where the ``train`` extra (PyTorch) is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail(f"{verb} needs PyTorch, in the training tools: pip install 'magspect[train]'")


def _input_and_out(src: Path, what: str, out: Path) -> None:
    """The input file exists and the output is an ``.onnx`` path."""
    if not src.is_file():
        fail(f"{what} not found: {src}")
    if out.suffix != ".onnx":
        fail(f"--out must end in .onnx: {out}")
