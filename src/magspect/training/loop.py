"""The training loop: streamed crops, CE + Dice, validation, checkpoints and resume, DDP.

CPU by default, CUDA when present (``device: auto``). Under ``torchrun`` (``WORLD_SIZE`` > 1) it
runs DistributedDataParallel on gloo (CPU) or NCCL (CUDA); rank 0 validates, logs and saves.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from magspect.models import create_model
from magspect.training.checkpoint import load_checkpoint, save_checkpoint
from magspect.training.config import TrainConfig
from magspect.training.data import CocoSource, CropStream, FolderSource, PartSource, SynthStreamSource, write_pair
from magspect.training.losses import SegLoss
from magspect.training.plot import write_curves
from magspect.training.validate import evaluate, load_val_views

SELECT_KEY = "miou_defects"  # best.pt is the checkpoint with the highest value of this
CURVE_KEYS = ["miou_defects", "recall/crack", "recall/chip", "recall/coating_flaw", "iou/crack"]


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def build_source(cfg: TrainConfig, is_main: bool) -> PartSource:
    d = cfg.data
    if d.source == "folder":
        return FolderSource(d.folder)
    if d.source == "coco":
        return CocoSource(d.coco)
    s = d.synth
    if d.cache_dir is not None and s.n_parts is not None:
        done = Path(d.cache_dir) / "DONE"
        if is_main and not done.exists():
            render_cache(cfg)
        if dist.is_initialized():
            dist.barrier()
        return FolderSource(d.cache_dir)
    return SynthStreamSource(s.specs, s.views, s.seed, s.n_parts, s.synth)


def _render_one(args: tuple) -> dict:
    """Render one part's views into the cache (a worker of :func:`render_cache`)."""
    s, root, i = args
    import cv2

    cv2.setNumThreads(1)
    src = SynthStreamSource(s.specs, s.views, s.seed, s.n_parts, s.synth)
    seed, spec = s.seed + i, s.specs[i % len(s.specs)]
    recs = []
    for view in s.views:
        image, mask, lookalikes = src.render(seed, spec, view)
        stem = f"{spec}-{seed:07d}-{view}"
        write_pair(root, stem, image, mask, lookalikes)
        um = float(src.last_truth.get("um_per_px", float("nan")))
        n_def = len(src.last_truth.get("defects", []))
        recs.append({"stem": stem, "spec": spec, "seed": seed, "view": view, "um_per_px": um, "n_defects": n_def})
    return {"i": i, "views": recs}


def render_cache(cfg: TrainConfig, workers: int | None = None) -> Path:
    """Render the ``n_parts`` training parts once to ``cache_dir`` (FolderSource layout, with the
    nuisances' boxes as look-alikes for hard-negative crops), on ``workers`` processes (default:
    the data loader's worker count, at least 1). The same files whatever the worker count."""
    s, root = cfg.data.synth, Path(cfg.data.cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    n_proc = max(1, workers if workers is not None else cfg.data.workers)
    jobs = [(s, root, i) for i in range(s.n_parts)]
    results: list[dict] = []
    with _progress(cfg.progress, s.n_parts, 0) as prog:
        task = prog.add_task("render", total=s.n_parts, info="parts") if prog else None
        if n_proc == 1:
            it = map(_render_one, jobs)
            pool = None
        else:
            import multiprocessing as mp

            pool = mp.get_context("fork").Pool(n_proc)  # as the DataLoader does on Linux; workers use no torch
            it = pool.imap_unordered(_render_one, jobs, chunksize=4)
        try:
            for r in it:
                results.append(r)
                if prog is not None:
                    prog.update(task, advance=1)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    results.sort(key=lambda r: r["i"])
    scales = []
    with open(root / "views.jsonl", "w") as f:
        for r in results:
            for rec in r["views"]:
                scales.append(rec["um_per_px"])
                f.write(json.dumps(rec) + "\n")
    info = {
        "n_parts": s.n_parts,
        "seed": s.seed,
        "specs": s.specs,
        "views": s.views,
        "um_per_px_range": [min(scales), max(scales)] if scales else None,
    }
    (root / "DONE").write_text(json.dumps(info))
    return root


def data_um_per_px_range(cfg: TrainConfig) -> tuple[float, float] | None:
    """The range of scales in a rendered cache (None when unknown)."""
    if cfg.data.cache_dir is None:
        return None
    done = Path(cfg.data.cache_dir) / "DONE"
    if not done.exists():
        return None
    rng = json.loads(done.read_text()).get("um_per_px_range")
    return tuple(rng) if rng else None


def _worker_init(_: int) -> None:
    """One thread per data-loader worker: the workers are the parallelism (no oversubscription)."""
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def lr_factor(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from 1 to 0.02 over ``progress`` in [0, 1]."""
    warm = cfg.optim.warmup_steps
    if step < warm:
        return (step + 1) / warm
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def _progress(enabled: bool, total: int, start: int):  # noqa: ANN202
    if not enabled:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )


class _Logs:
    """metrics.jsonl (everything), train.csv and val.csv, and curves.png."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.train: list[dict] = []
        self.val: list[dict] = []
        jl = out_dir / "metrics.jsonl"
        if jl.exists():
            for line in jl.read_text().splitlines():
                rec = json.loads(line)
                (self.train if rec.get("kind") == "train" else self.val).append(rec)

    def truncate(self, step: int) -> None:
        """On resume, forget records after the checkpoint's step."""
        self.train = [r for r in self.train if r["step"] <= step]
        self.val = [r for r in self.val if r["step"] <= step]
        self._rewrite()

    def _rewrite(self) -> None:
        with open(self.out_dir / "metrics.jsonl", "w") as f:
            for r in sorted(self.train + self.val, key=lambda r: (r["step"], r["kind"])):
                f.write(json.dumps(r) + "\n")
        for name, recs in (("train.csv", self.train), ("val.csv", self.val)):
            if recs:
                keys = list(dict.fromkeys(k for r in recs for k in r))
                with open(self.out_dir / name, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=keys)
                    w.writeheader()
                    w.writerows(recs)

    def add(self, rec: dict) -> None:
        (self.train if rec["kind"] == "train" else self.val).append(rec)
        with open(self.out_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def flush(self) -> None:
        self._rewrite()
        write_curves(self.out_dir / "curves.png", self.train, self.val, CURVE_KEYS)


@dataclass(frozen=True)
class Process:
    """This training process: single, or one rank of a ``torchrun`` DDP group."""

    distributed: bool
    rank: int
    local_rank: int
    use_cuda: bool
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_process(device: str, num_threads: int | None, seed: int, out_dir: Path, config_json: str) -> Process:
    """Join the DDP group under ``torchrun`` (gloo on CPU, NCCL on CUDA), pick the device, set torch
    threads and the seed; rank 0 creates ``out_dir`` and writes the resolved config there."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    proc = Process(
        distributed=distributed,
        rank=dist.get_rank() if distributed else 0,
        local_rank=local_rank,
        use_cuda=use_cuda,
        device=torch.device(f"cuda:{local_rank}" if use_cuda else "cpu"),
    )
    if use_cuda:
        torch.cuda.set_device(proc.device)
    if num_threads and not use_cuda:
        torch.set_num_threads(num_threads)
    torch.manual_seed(seed)
    if proc.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(config_json)
    return proc


def _initial_weights(cfg: TrainConfig) -> tuple[dict[str, Any], str]:
    """The state dict ``model.init_from`` names (a checkpoint's, or one recovered from an ONNX export
    and checked against onnxruntime) and the sha256 of that file. Raises ValueError for another
    architecture or a file that is not there."""
    from magspect.training.export import sha256_file

    ref = str(cfg.model.init_from)
    if cfg.model.init_from_export():
        from magspect.training.retrain import resolve_parent

        try:
            parent = resolve_parent(ref)
        except FileNotFoundError as exc:
            raise ValueError(f"model.init_from {ref}: {exc}") from None
        name, chans, state = parent.info["model_name"], parent.info["in_chans"], parent.model.state_dict()
        sha = parent.sha256
    else:
        if not Path(ref).is_file():
            raise ValueError(f"model.init_from {ref}: no such checkpoint")
        init = load_checkpoint(ref)
        name, chans, state = init.get("model_name"), init.get("in_chans"), init["model"]
        sha = sha256_file(ref)
    if (name, chans) != (cfg.model.name, cfg.model.in_chans):
        raise ValueError(
            f"model.init_from {ref} holds {name} with {chans} channel(s), the config asks for "
            f"{cfg.model.name} with {cfg.model.in_chans}"
        )
    return state, sha


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train as ``cfg`` says; returns the final summary (also written to ``summary.json``)."""
    out_dir = Path(cfg.out_dir)
    proc = setup_process(cfg.device, cfg.num_threads, cfg.seed, out_dir, cfg.model_dump_json(indent=2))
    distributed, rank, local_rank = proc.distributed, proc.rank, proc.local_rank
    is_main, use_cuda, device = proc.is_main, proc.use_cuda, proc.device

    model = create_model(cfg.model.name, in_chans=cfg.model.in_chans, **cfg.model.kwargs).to(device)
    # torchvision's MobileNetV3 tracks BatchNorm statistics with momentum 0.01: on a short CPU run
    # they lag the weights and eval mode (validation, export) sees stale statistics. 0.1 keeps up.
    from magspect.training.bn import freeze_batchnorm, set_bn_momentum

    set_bn_momentum(model, 0.1)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
    loss_fn = SegLoss(
        cfg.loss.class_weights, cfg.loss.ce_weight, cfg.loss.dice_weight, cfg.loss.focal_gamma, cfg.loss.dice_classes
    ).to(device)

    step, best, elapsed_before = 0, -math.inf, 0.0
    last = out_dir / "last.pt"
    init_sha256 = None  # of the file the weights came from (a resumed run keeps its first run's)
    if cfg.model.init_from is not None and not (resume and last.exists()):
        state, init_sha256 = _initial_weights(cfg)
        model.load_state_dict(state)
    bn_frozen = cfg.bn_frozen()
    if resume and last.exists():
        ck = load_checkpoint(last)
        if ck["config_sha256"] != cfg.sha256() and is_main:
            print(f"warning: resuming {last} with a changed config")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, best = ck["step"], ck.get("best", -math.inf)
        init_sha256 = ck.get("init_from_sha256")
        elapsed_before = float(ck.get("elapsed_s", 0.0))
    logs = _Logs(out_dir) if is_main else None
    if logs is not None:
        logs.truncate(step)

    ddp_model = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
        if distributed
        else model
    )
    source = build_source(cfg, is_main)
    stream = CropStream(
        source,
        crop_px=cfg.data.crop_px,
        in_chans=cfg.model.in_chans,
        defect_bias=cfg.data.defect_bias,
        hard_bias=cfg.data.hard_bias,
        class_weights=cfg.data.defect_class_weights,
        kind_weights=cfg.data.hard_kind_weights,
        crops_per_part=cfg.data.crops_per_part,
        pool_size=cfg.data.pool_size,
        augment=cfg.data.augment,
        seed=cfg.seed * 1_000_003 + step,  # a resumed run draws new crops, not the first ones again
        rank=rank,
    )
    loader = DataLoader(
        stream,
        batch_size=cfg.optim.batch_size,
        num_workers=cfg.data.workers,
        persistent_workers=cfg.data.workers > 0,
        pin_memory=use_cuda,
        worker_init_fn=_worker_init if cfg.data.workers > 0 else None,
    )
    um_range = data_um_per_px_range(cfg)
    val_views = load_val_views(cfg) if is_main and cfg.val.source != "none" else []

    def ckpt_state(val_metrics: dict | None) -> dict:
        return {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "elapsed_s": elapsed_before + time.perf_counter() - t0,
            "step": step,
            "best": best,
            "model_name": cfg.model.name,
            "model_kwargs": cfg.model.kwargs,
            "in_chans": cfg.model.in_chans,
            "model_cfg": model.cfg.to_dict(),
            "bit_depth": cfg.data.bit_depth,
            "um_per_px": cfg.data.um_per_px,
            "um_per_px_range": um_range,
            "config": json.loads(cfg.model_dump_json()),
            "config_sha256": cfg.sha256(),
            "git_commit": git_commit(),
            "val_metrics": val_metrics or {},
            "bn_frozen": bn_frozen,
            "init_from_sha256": init_sha256,
        }

    summary: dict[str, Any] = {"start_step": step}
    budget_s = cfg.optim.time_budget_min * 60 if cfg.optim.time_budget_min else None

    def progress_now() -> float:
        p = step / cfg.optim.steps
        if budget_s:
            p = max(p, (elapsed_before + time.perf_counter() - t0) / budget_s)
        if distributed:  # every rank follows rank 0's clock, so all stop at the same step
            t = torch.tensor([p], dtype=torch.float64)
            dist.broadcast(t, 0)
            p = float(t)
        return p

    model.train()
    if bn_frozen:
        freeze_batchnorm(model)
    t0, t_last, seen = time.perf_counter(), time.perf_counter(), 0
    run_loss, run_n = 0.0, 0
    last_val: dict[str, float] = {}
    it = iter(loader)
    with _progress(is_main and cfg.progress, cfg.optim.steps, step) as prog:
        task = prog.add_task("train", total=cfg.optim.steps, completed=step, info="") if prog else None
        progress = progress_now()
        while progress < 1.0:
            for group in opt.param_groups:
                group["lr"] = cfg.optim.lr * lr_factor(cfg, step, progress)
            x, y = next(it)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = loss_fn(ddp_model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            step += 1
            progress = progress_now()
            finished = progress >= 1.0
            seen += x.shape[0]
            run_loss += float(loss.detach())
            run_n += 1
            if prog is not None:
                prog.update(task, completed=step, info=f"loss {run_loss / run_n:.4f}")
            if is_main and (step % cfg.log_every == 0 or finished):
                now = time.perf_counter()
                logs.add(
                    {
                        "kind": "train",
                        "step": step,
                        "loss": run_loss / run_n,
                        "lr": opt.param_groups[0]["lr"],
                        "s_per_step": (now - t_last) / run_n,
                        "elapsed_s": now - t0,
                    }
                )
                t_last, run_loss, run_n = now, 0.0, 0
            do_val = val_views and (step % cfg.val.every_steps == 0 or finished)
            if is_main and do_val:
                last_val = evaluate(model, val_views, cfg.model.in_chans, device, cfg.val.min_instance_area_px)
                if bn_frozen:  # evaluate() puts the model back in train mode, BatchNorm included
                    freeze_batchnorm(model)
                logs.add({"kind": "val", "step": step, **last_val})
                score = last_val.get(SELECT_KEY, float("nan"))
                if math.isfinite(score) and score > best:
                    best = score
                    save_checkpoint(out_dir / "best.pt", **ckpt_state(last_val))
            if is_main and (step % cfg.ckpt_every == 0 or finished):
                save_checkpoint(last, **ckpt_state(last_val))
                if cfg.keep_checkpoints:
                    shutil.copyfile(last, out_dir / f"step-{step:06d}.pt")
                logs.flush()
    if is_main:
        if not (out_dir / "best.pt").exists():
            save_checkpoint(out_dir / "best.pt", **ckpt_state(last_val))
        logs.flush()
        summary.update(
            {
                "steps": step,
                "train_s": time.perf_counter() - t0,
                "crops_seen": seen,
                "final_loss": logs.train[-1]["loss"] if logs.train else None,
                "first_loss": logs.train[0]["loss"] if logs.train else None,
                "val": last_val,
                "best": best,
            }
        )
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return summary
