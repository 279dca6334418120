"""``magspect retrain --config FILE``: fine-tune on real labelled data mixed with synthetic data.

Several processes: ``torchrun --nproc_per_node N -m magspect retrain --config FILE`` (DDP, gloo on
CPU, NCCL on GPUs). See ``docs/retraining.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail, load_config


def register(app: typer.Typer) -> None:
    app.command("retrain")(retrain_cmd)


def retrain_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="retraining recipe (YAML)")],
    out_dir: Annotated[Path | None, typer.Option(help="override the config's out_dir")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="override train.steps")] = None,
    parent: Annotated[str | None, typer.Option(help="override parent: bundled, FILE.onnx, FILE.pt, registry:V")] = None,
    registry: Annotated[Path | None, typer.Option(help="override registry.path")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="override num_threads (torch threads per process)")] = None,
    no_register: Annotated[bool, typer.Option("--no-register", help="export but do not register")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="quiet")] = False,
) -> None:
    """Fine-tune from the bundled (or a given) model on real data + synthetic, export, register."""
    try:
        import torch  # noqa: F401
    except ImportError:
        fail("retraining needs PyTorch: pip install 'magspect[train]'")
    from magspect.datasets.labelled import LabelledDataError
    from magspect.training.export import ExportError
    from magspect.training.retrain import RetrainConfig, run_retrain

    cfg = load_config(RetrainConfig, config)
    upd: dict = {}
    if out_dir is not None:
        upd["out_dir"] = out_dir
    if parent is not None:
        upd["parent"] = parent
    if no_progress:
        upd["progress"] = False
    if threads is not None:
        upd["num_threads"] = threads
    if steps is not None:
        upd["train"] = cfg.train.model_copy(update={"steps": steps})
    if registry is not None or no_register:
        upd["registry"] = cfg.registry.model_copy(update={
            **({"path": registry} if registry is not None else {}), **({"enabled": False} if no_register else {})})
    cfg = cfg.model_copy(update=upd)
    try:
        summary = run_retrain(cfg, log=console.print)
    except (LabelledDataError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    except ExportError as exc:
        fail(str(exc), code=3)
    if summary:
        console.print(
            f"fine-tuned {summary['steps']} steps in {summary['train_s']:.0f} s (best at step {summary['best_step']}"
            f"{', stopped early' if summary['stopped_early'] else ''}); checkpoint {summary['checkpoint']}"
            + (f"; registered {summary['registry_version']}" if summary.get("registry_version") else "")
        )
