"""``magspect train --config FILE``: train the defect model (needs the ``train`` extra).

Several processes: ``torchrun --nproc_per_node 2 -m magspect train --config FILE`` (DDP, gloo on
CPU, NCCL on GPUs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail, load_config


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        config: Annotated[Path, typer.Option("--config", "-c", help="training recipe (YAML)")],
        out_dir: Annotated[Path | None, typer.Option(help="override the config's out_dir")] = None,
        steps: Annotated[int | None, typer.Option(min=1, help="override optim.steps")] = None,
        resume: Annotated[bool, typer.Option(help="continue from OUT_DIR/last.pt if it exists")] = False,
        no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bar")] = False,
    ) -> None:
        """Train the defect segmentation model on streamed synthetic (or on-disk) data."""
        try:
            import torch  # noqa: F401
        except ImportError:
            fail("training needs PyTorch: pip install 'magspect[train]'")
        from magspect.training.config import TrainConfig
        from magspect.training.loop import train as run_training

        cfg = load_config(TrainConfig, config)
        updates: dict = {}
        if out_dir is not None:
            updates["out_dir"] = out_dir
        if no_progress:
            updates["progress"] = False
        if steps is not None:
            cfg.optim.steps = steps
        cfg = cfg.model_copy(update=updates)
        summary = run_training(cfg, resume=resume)
        if summary.get("steps") is not None:
            val = summary.get("val") or {}
            console.print(
                f"trained {summary['steps']} steps in {summary['train_s']:.0f} s; loss "
                f"{summary['first_loss']:.4f} -> {summary['final_loss']:.4f}; "
                f"val mIoU(defects) {val.get('miou_defects', float('nan')):.3f}; "
                f"checkpoints in {cfg.out_dir}/ (best.pt, last.pt)"
            )
