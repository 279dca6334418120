"""``magspect calibrate-sizing``: measure how well a model sizes the defects it finds, on validation
parts with known truth, and write that into (a copy of) the model as its decision band.

A segmentation model's defect outlines are not exact: its chip lengths scatter by a few pixels and
run short. The gate's decision rule (ISO 14253-1) sends a size within its expanded uncertainty of a
limit to REVIEW; with the specs' 1 px, a chip the model measures 3 px short of its true length
passes. This verb measures, per defect class, |median error| + 2 robust sigma of the lengths the
model reports against the truth (``evaluate``'s ``defect_sizing_mm``) and records it in the model's
manifest (``defect_length_uncertainty_px``); the Inspector takes the larger of it and the spec's.

The model's file changes (its manifest is inside), so its sha256 does too: a look-alike verifier
trained for it follows with ``--verifier`` / ``--verifier-out`` (same weights, new link), and a
``SHA256SUMS`` beside an output is updated. Writing ONNX metadata needs the ``train`` extra (onnx).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from magspect.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("calibrate-sizing")(calibrate_sizing_cmd)


def calibrate_sizing_cmd(
    model: Annotated[Path, typer.Argument(help="The model (ONNX export) to calibrate.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the calibrated copy (not MODEL itself).")],
    suite: Annotated[str, typer.Option(help="Synthetic suite with known truth (the bundled bands: magsynth-v2; "
                                       "magsynth-v3 draws face cracks on the face).")] = "magsynth-v2",
    split: Annotated[str, typer.Option(help="Split to measure on: val (never test, which reports it).")] = "val",
    n: Annotated[int, typer.Option("--n", min=20, help="Parts of the split.")] = 500,
    verifier: Annotated[Path | None, typer.Option(help="A verifier trained for MODEL: relinked to OUT.")] = None,
    verifier_out: Annotated[Path | None, typer.Option(help="Where to write the relinked verifier.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures here.")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> None:
    """Measure MODEL's defect sizing on validation parts; write OUT with it as the decision band."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn
    from rich.table import Table

    from magspect.datasets import get_suite
    from magspect.inspect.backend import ModelError, Segmenter
    from magspect.inspect.evaluate import MIN_SIZING_N, evaluate_parts
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.verifier import Verifier, VerifierError

    if (verifier is None) != (verifier_out is None):
        fail("give --verifier and --verifier-out together")
    if out.resolve() == model.resolve() or (verifier_out is not None and verifier_out.resolve() == verifier.resolve()):
        fail("write the calibrated files to new paths (--out, --verifier-out), not over their inputs")
    if split == "test":
        fail("calibrate on the val split: the test split is where the result is reported")
    try:
        seg = Segmenter(model, warmup=False)
        v = Verifier(verifier) if verifier is not None else None
    except (ModelError, VerifierError) as exc:
        fail(str(exc))
    if v is not None and not v.manifest.fits(seg.sha256):
        fail(f"verifier {verifier} was not trained for {model} (sha256 {seg.sha256[:12]}…)")
    try:
        synth_suite = get_suite(suite)
        total = min(n, len(synth_suite.seeds(split)))
        parts = synth_suite.iter_parts(split, limit=n, backlight=True)
    except (KeyError, ValueError) as exc:
        fail(str(exc))

    # the verifier does not change the sizes of what is kept: measure without it
    inspector = Inspector(segmenter=seg, verifier=False)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=no_progress) as bar:
        task = bar.add_task(f"{suite}/{split}: sizing found defects", total=total)
        ev = evaluate_parts(inspector, parts, progress=lambda _o: bar.advance(task))
    sizing = ev.summary["defect_sizing_mm"]
    u_px = {c: s["length_uncertainty_px"] for c, s in sizing.items() if s.get("length_uncertainty_px") is not None}

    table = Table(title=f"defect sizing of {model.name} on {total} {suite}/{split} parts (reported - true length)")
    for col in ("class", "found", "median px", "robust sigma px", "U px (|median| + 2 sigma)"):
        table.add_column(col)
    for c, s in sorted(sizing.items()):
        u = s.get("length_uncertainty_px")
        table.add_row(c, str(s["n"]), f"{s['length_median_px']:+.2f}", f"{s['length_sigma_robust_px']:.2f}",
                      f"{u:.1f}" if u is not None else f"— (under {MIN_SIZING_N} found: the spec's applies)")
    console.print(table)
    if not u_px:
        fail(f"no class had {MIN_SIZING_N} found defects to size; use more parts (--n)")

    try:
        new_sha = write_calibrated(model, out, sizing, verifier, verifier_out)
    except RuntimeError as exc:  # no onnx package to write metadata with
        fail(str(exc))
    console.print(f"wrote {out} (sha256 {new_sha[:12]}…): decision band {u_px} px")
    if verifier_out is not None:
        console.print(f"wrote {verifier_out}: the verifier, now linked to {out.name}")
    if json_out is not None:
        json_out.write_text(json.dumps({"model": str(model), "out": str(out), "sha256": new_sha, "suite": suite,
                                        "split": split, "n_parts": total, "defect_sizing_mm": sizing,
                                        "defect_length_uncertainty_px": u_px}, indent=2))


def write_calibrated(
    model: Path, out: Path, sizing: dict[str, dict[str, Any]], verifier: Path | None = None,
    verifier_out: Path | None = None,
) -> str:
    """Write ``out``: ``model`` with ``sizing``'s uncertainties (``evaluate``'s ``defect_sizing_mm``;
    classes without one keep the spec's) as its manifest's ``defect_length_uncertainty_px`` and the
    figures behind them in its ``validation_metrics``; ``verifier_out``: ``verifier`` linked to
    ``out`` where it was linked to ``model``. ``SHA256SUMS`` files beside the outputs are updated.
    Returns ``out``'s sha256."""
    from magspect.inspect.backend import Segmenter, sha256_file
    from magspect.inspect.verifier import VERIFIER_METADATA_KEY, Verifier
    from magspect.models.manifest import METADATA_KEY
    from magspect.models.onnx_meta import copy_with_metadata

    seg = Segmenter(model, warmup=False)
    vm = Verifier(verifier).manifest if verifier is not None and verifier_out is not None else None
    if vm is not None and not vm.fits(seg.sha256):
        raise ValueError(f"verifier {verifier} was not trained for {model}: nothing to relink")
    u_px = {c: float(s["length_uncertainty_px"]) for c, s in sizing.items()
            if s.get("length_uncertainty_px") is not None}
    metrics = dict(seg.manifest.validation_metrics)
    for c, s in sizing.items():
        metrics[f"sizing/{c}/n"] = float(s["n"])
        metrics[f"sizing/{c}/length_median_px"] = float(s["length_median_px"])
        metrics[f"sizing/{c}/length_sigma_robust_px"] = float(s["length_sigma_robust_px"])
    manifest = seg.manifest.model_copy(update={"defect_length_uncertainty_px": u_px, "validation_metrics": metrics})
    manifest = type(manifest).model_validate(manifest.model_dump())  # validated, not only copied
    copy_with_metadata(model, out, METADATA_KEY, manifest.to_json(indent=None), manifest.to_json())
    new_sha = sha256_file(out)
    if vm is not None and verifier is not None and verifier_out is not None:

        def swap(sha: str) -> str:
            return new_sha if sha == seg.sha256 else sha

        relinked = vm.model_copy(update={"segmenter_sha256": swap(vm.segmenter_sha256),
                                         "also_for_sha256": tuple(swap(s) for s in vm.also_for_sha256)})
        copy_with_metadata(verifier, verifier_out, VERIFIER_METADATA_KEY, relinked.to_json())
    return new_sha
