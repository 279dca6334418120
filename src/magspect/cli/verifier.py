"""``magspect train-verifier``: mine the model's candidates on synthetic parts, train the look-alike
verifier on them, export it (needs the ``train`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail


def register(app: typer.Typer) -> None:
    app.command("train-verifier")(train_verifier_cmd)


def train_verifier_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: mined candidates, report, verifier.onnx.")],
    model: Annotated[Path | None, typer.Option(help="The segmentation model it verifies (default: bundled).")] = None,
    parts: Annotated[int, typer.Option(min=20, help="Synthetic parts to mine candidates from.")] = 5000,
    seed_start: Annotated[int, typer.Option(help="First part seed (magsynth-v2's train recipe).")] = 300_000,
    val_parts: Annotated[int, typer.Option(min=10, help="The last N parts: held out, choose the threshold.")] = 500,
    epochs: Annotated[int, typer.Option(min=1, help="The bundled verifier's: 36 (33 minutes on 2 CPU cores).")] = 36,
    workers: Annotated[int, typer.Option(min=1, help="Mining processes.")] = 2,
    min_recall_rejectable: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Keep at least this share of held-out real candidates that "
                            "found a defect at/above a reject limit.")] = 0.995,
    min_recall: Annotated[float, typer.Option(min=0.5, max=1.0, help="... and of all real ones.")] = 0.98,
    also_for: Annotated[
        list[Path] | None,
        typer.Option(help="Other exports of the same checkpoint (e.g. its INT8 model) the verifier may serve; "
                     "repeatable. Check them with `magspect evaluate --model ... --verifier ...`."),
    ] = None,
    review_below: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Record a review band: kept candidates scored under this send their "
                     "part to REVIEW, not REJECT (sweep it first: benchmarks/bench_verifier_thresholds.py "
                     "--review-below)."),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
) -> None:
    """Train the look-alike verifier for a segmentation model; resumes mining if OUT has chunks."""
    try:
        import torch
    except ImportError:
        fail("training needs PyTorch: pip install 'magspect[train]'")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from magspect.inspect.backend import ModelError, Segmenter, bundled_model_path
    from magspect.training.plot import write_curves
    from magspect.training.verifier import (
        VerifierTrainConfig,
        build_manifest,
        export_verifier,
        save_report,
        split_by_seed,
        train_verifier,
    )
    from magspect.training.verifier_data import load_mined, mine

    model_path = model if model is not None else bundled_model_path()
    try:
        seg = Segmenter(model_path, warmup=False)
        also = tuple(Segmenter(p, warmup=False).sha256 for p in also_for or ())
    except ModelError as exc:
        fail(str(exc))
    if parts <= val_parts:
        fail(f"--parts {parts} must be more than --val-parts {val_parts}")
    out_dir.mkdir(parents=True, exist_ok=True)
    mined = out_dir / "mined"
    if (mined / "mined.json").is_file():
        before = json.loads((mined / "mined.json").read_text())
        if Path(before["model"]).name != model_path.name:
            fail(f"{mined} holds candidates of {before['model']}; use another --out for {model_path}")
    seeds = range(seed_start, seed_start + parts)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=no_progress) as bar:
        task = bar.add_task("mining candidates (parts)", total=parts)

        def progress(done: int, n_candidates: int) -> None:
            bar.update(task, completed=done, description=f"mining: {n_candidates} candidates so far")

        mine(model_path, mined, seeds, workers=workers, progress=progress)
    data = load_mined(mined)
    data = {k: v[(data["seed"] >= seeds.start) & (data["seed"] < seeds.stop)] for k, v in data.items()}
    n_real = int(data["label"].sum())
    console.print(f"{len(data['label'])} candidates from {parts} parts: {n_real} real defects, "
                  f"{len(data['label']) - n_real} look-alikes")
    cfg = VerifierTrainConfig(epochs=epochs, val_parts=val_parts, min_recall_rejectable=min_recall_rejectable,
                              min_recall=min_recall)
    try:
        net, report = train_verifier(data, cfg, log=console.print)
    except ValueError as exc:
        fail(str(exc))
    save_report(report, out_dir)
    write_curves(out_dir / "curves.png",
                 [{"step": e["epoch"], "loss": e["train_loss"]} for e in report.epochs],
                 [{"step": e["epoch"], "val_auroc": e["val_auroc"]} for e in report.epochs], ["val_auroc"])
    _, va = split_by_seed(data, val_parts)
    training = {
        "command": (f"magspect train-verifier --out {out_dir} --model {model_path.name} --parts {parts} "
                    f"--seed-start {seed_start} --val-parts {val_parts} --epochs {epochs}"),
        "suite_recipe": "magsynth-v2/train", "seeds": [seed_start, seed_start + parts],
        "val_seeds": [seed_start + parts - val_parts, seed_start + parts],
        "n_candidates": int(len(data["label"])), "n_real": n_real,
    }
    manifest = build_manifest(report, seg.sha256, training, also_for=also, review_below=review_below)
    state = {"state_dict": net.state_dict(), "widths": net.widths, "strides": net.strides,
             "manifest": manifest.model_dump()}
    torch.save(state, out_dir / "verifier.pt")
    path = export_verifier(net, out_dir / "verifier.onnx", manifest,
                           check=(data["patches"][va[:256]], data["features"][va[:256]]))
    (out_dir / "verifier.manifest.json").write_text(manifest.to_json())
    console.print(
        f"held-out {report.n_val} candidates ({val_parts} parts): threshold {report.keep_threshold:.3f} keeps "
        f"{report.kept_real:.1%} of real defects ({report.kept_real_rejectable:.1%} of those at/above a reject "
        f"limit) and dismisses {report.dismissed_false:.1%} of look-alikes; AUROC {report.val_auroc:.4f}"
    )
    for cause, (gone, n) in sorted(report.dismissed_false_by_cause.items(), key=lambda kv: -kv[1][1]):
        console.print(f"  {cause:12s} {gone:5d} of {n:5d} dismissed")
    console.print(f"verifier: {path} (curves: {out_dir / 'curves.png'}); use it: magspect evaluate --suite "
                  f"magsynth-v2 --n 150 --verifier {path}")
