"""``magspect evaluate``: the whole pipeline against known truth (synthetic suite or real labelled data)."""

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
    fail,
)


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_cmd)


def evaluate_cmd(
    suite: Annotated[str | None, typer.Option(
        help="magsynth-v3 (front-lit, as a station), -v2 (v3 with face cracks started at the outline) or -v1.")] = None,
    split: Annotated[str, typer.Option(help="Split of the suite: test or val.")] = "test",
    lighting: Annotated[
        str | None,
        typer.Option(help="Image every view of the suite's parts under this front light (coaxial, dome or "
                     "darkfield) instead of the suite's own draw: the same parts, poses, defects and look-alikes; "
                     "what a station lit that way would do (--suite)."),
    ] = None,
    n: Annotated[int | None, typer.Option("--n", min=1, help="Only the first N parts of the split.")] = None,
    data: Annotated[
        str | None, typer.Option(help="Real labelled data, e.g. mask-folder:../shared/data/magnetic_tile")
    ] = None,
    class_map: Annotated[Path | None, typer.Option(help="YAML label -> class map for --data.")] = None,
    model: Annotated[Path | None, typer.Option(help="ONNX model (default: the bundled model).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Use the bundled INT8 model.")] = False,
    defect_threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=0.999, help="Operating point: defect pixels need this probability (--suite; "
                     "default: the model's manifest)."),
    ] = None,
    verifier: VerifierOpt = None,
    review_below: ReviewBelowOpt = None,
    tta: TtaOpt = Tta.none,
    subtypes: SubtypesOpt = None,
    chip_join_px: Annotated[
        int | None,
        typer.Option(min=0, help="Chip pieces up to this many pixels apart are measured as one chip (--suite; "
                     "default: the Inspector's; 0: none joined)."),
    ] = None,
    crack_join_px: Annotated[
        int | None,
        typer.Option(min=0, help="Crack pieces up to this many pixels apart are reported as one crack (--suite; "
                     "default: the Inspector's; 0: none joined)."),
    ] = None,
    off_part_run_px: Annotated[
        float | None,
        typer.Option(min=0.0, help="A crack candidate whose line runs on this many pixels past the part's outline "
                     "is dismissed as a fibre over the edge (--suite; default: the Inspector's; 0: never)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
) -> None:
    """Escape rate, false rejects, reviews, defect recall and metrology error (suite); AUROC and IoU (data)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from magspect.inspect.backend import ModelError

    if (suite is None) == (data is None):
        fail("give exactly one of --suite magsynth-v2 (or magsynth-v3, magsynth-v1) or --data mask-folder:PATH")
    if lighting is not None and data is not None:
        fail("--lighting re-images a synthetic suite's parts: use it with --suite, not --data")
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    if data is not None:
        from magspect.datasets.labelled import ClassMap, LabelledDataError, read_mask_folder
        from magspect.inspect.backend import Segmenter, bundled_model_path
        from magspect.inspect.evaluate import evaluate_labelled

        kind, _, path = data.partition(":")
        if kind != "mask-folder" or not path:
            fail(f"--data {data!r}: expected mask-folder:PATH")
        try:
            folder = read_mask_folder(path, ClassMap.from_file(class_map) if class_map else None)
            seg = Segmenter(model if model is not None else bundled_model_path(int8), tta=tta.value)
        except (LabelledDataError, ModelError) as exc:
            fail(str(exc))
        if n is not None:
            folder.items = folder.items[:n]
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"evaluating {path}", total=len(folder))
            summary = evaluate_labelled(seg, folder, progress=lambda i: bar.advance(task))
        summary = {"data": data, "model": {"name": seg.name, "sha256": seg.sha256}, **summary}
        console.print(
            f"{summary['n_images']} images ({summary['n_defective']} with defects): image AUROC "
            f"{summary['image_auroc']:.3f}, mean IoU {summary['mean_iou']:.3f}"
        )
        for k, v in summary["iou_per_class"].items():
            console.print(f"  IoU {k:14s} {'—' if v is None else f'{v:.3f}'}")
    else:
        from magspect.datasets import SUITES
        from magspect.inspect.evaluate import evaluate_parts
        from magspect.inspect.inspector import Inspector
        from magspect.inspect.subtype import SubtypeError
        from magspect.inspect.verifier import VerifierError

        if suite not in SUITES:
            fail(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
        synth_suite = SUITES[suite]
        try:
            inspector = Inspector(
                model, int8=int8 and model is None, defect_threshold=defect_threshold,
                verifier=verifier, review_below=review_below, subtypes=subtypes,
                tta=tta.value, **({} if chip_join_px is None else {"chip_join_px": chip_join_px}),
                **({} if crack_join_px is None else {"crack_join_px": crack_join_px}),
                **({} if off_part_run_px is None else {"off_part_run_px": off_part_run_px}),
            )
            total = len(synth_suite.seeds(split)) if n is None else min(n, len(synth_suite.seeds(split)))
            # + back-lit images for metrology; --lighting: the same parts, lit one way
            synth_suite.config(split, light=lighting)  # refused here, not at the first part
            parts = synth_suite.iter_parts(split, limit=n, backlight=True, light=lighting)
        except (ModelError, VerifierError, SubtypeError, ValueError, KeyError) as exc:
            fail(str(exc))
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(f"{suite}/{split}" + (f" under {lighting}" if lighting else ""), total=total)
            ev = evaluate_parts(inspector, parts, progress=lambda o: bar.advance(task))
        summary = {"suite": suite, "split": split, "lighting": lighting or "suite",
                   "defect_threshold": inspector.defect_threshold, "tta": tta.value,
                   "chip_join_px": inspector.chip_join_px, "crack_join_px": inspector.crack_join_px,
                   "off_part_run_px": inspector.off_part_run_px,
                   "verifier": None if inspector.verifier_ref is None else inspector.verifier_ref.model_dump(),
                   "verifier_review_below": inspector.verifier_review_below,
                   "subtypes": None if inspector.subtypes_ref is None else inspector.subtypes_ref.model_dump(),
                   "defect_length_uncertainty_px": dict(inspector.segmenter.manifest.defect_length_uncertainty_px),
                   **ev.summary}
        console.print(
            (f"under {lighting} light: " if lighting else "")
            + f"{summary['n_parts']} parts ({summary['n_nonconforming']} nonconforming): escape rate "
            f"{summary['escape_rate']:.2%}, false rejects {summary['false_reject_rate']:.2%}, reviews "
            f"{summary['review_rate']:.2%}, {summary['parts_per_s']:.2f} parts/s (incl. generation)"
        )
        if len(summary["per_spec"]) > 1:
            console.print("  per spec: " + "; ".join(
                f"{k} escapes {v['escapes']}/{v['n_nonconforming']}, false rejects {v['false_rejects']}/"
                f"{v['n_conforming']}" for k, v in summary["per_spec"].items()
            ))
        for c, bands in summary["defect_recall"].items():
            txt = ", ".join(
                f"{b}: {'—' if v['recall'] is None else format(v['recall'], '.2f')} (n={v['n']})"
                for b, v in bands.items()
            )
            console.print(f"  recall {c:13s} {txt}")
        if summary["rejectable_recall_by_kind"]:
            console.print("  rejectable found by kind: " + ", ".join(
                f"{k} {v['recall']:.2f} (n={v['n']})" for k, v in summary["rejectable_recall_by_kind"].items()))
        per_100 = 100.0 / max(summary["n_parts"], 1)
        by_cause = sorted(summary["reported_false_defects_by_cause"].items(), key=lambda kv: -kv[1])
        console.print(
            f"  false defects reported: {summary['reported_false_defects_per_100_parts']:.1f} per 100 parts "
            f"({', '.join(f'{k} {v * per_100:.1f}' for k, v in by_cause) or 'none'}); "
            f"on nuisances {summary['false_defects_on_nuisances_per_100_parts']:.1f}"
        )
        rel = summary["coating_flaw_subtypes_relieved"]
        if inspector.subtypes is not None:
            console.print(
                f"  coating flaws judged by an allowed kind only (subtype classifier): {rel['lenient']['relieved']} "
                f"of {rel['lenient']['n']} truly allowed kinds found, {rel['strict']['relieved']} of "
                f"{rel['strict']['n']} strict ones (each of those could let a part pass)"
            )
        sizing = summary.get("defect_sizing_mm") or {}
        if sizing:
            console.print("  size of found defects, reported − true: " + "; ".join(
                f"{c} length {v['length_bias']:+.3f} mm (σ {v['length_sigma'] or 0:.3f}, n={v['n']})"
                + (f", depth {v['depth_bias']:+.3f} mm" if "depth_bias" in v else "")
                for c, v in sizing.items()
            ))
        if summary["parts_with_surface_not_visible"]:
            hidden = ", ".join(f"{k} {v}" for k, v in summary["defects_not_visible"].items()) or "none"
            console.print(
                f"  {summary['parts_with_surface_not_visible']} parts had a view lit only from behind (surface not "
                f"visible: REVIEW at best); defects such views hide, left out of recall: {hidden}"
            )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        console.print(f"figures: {json_out}")
