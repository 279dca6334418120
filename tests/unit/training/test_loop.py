"""The training loop on the toy folder dataset: loss goes down, logs, checkpoints, resume, config."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from pydantic import ValidationError

from magspect.training.checkpoint import load_checkpoint, model_from_checkpoint
from magspect.training.config import TrainConfig
from magspect.training.loop import train
from magspect.training.toy import write_toy_folder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return write_toy_folder(tmp_path_factory.mktemp("toy"), 8, 96, seed=0)


def _cfg(toy_dir, out_dir, steps=30, **kw) -> TrainConfig:
    raw = {
        "out_dir": str(out_dir),
        "num_threads": 1,
        "log_every": 5,
        "ckpt_every": 10,
        "progress": False,
        "model": {"name": "unet_mnv3s", "in_chans": 1},
        "data": {"source": "folder", "folder": str(toy_dir), "crop_px": 64, "crops_per_part": 4},
        "val": {"source": "folder", "folder": str(toy_dir), "n_parts": 3, "every_steps": 10},
        "optim": {"steps": steps, "batch_size": 4, "lr": 3e-3, "warmup_steps": 3},
    }
    raw.update(kw)
    return TrainConfig.model_validate(raw)


def test_a_few_steps_lower_the_loss_and_write_logs(toy_dir, tmp_path):
    summary = train(_cfg(toy_dir, tmp_path, steps=30))
    assert summary["steps"] == 30
    assert summary["final_loss"] < 0.8 * summary["first_loss"]
    for name in ("best.pt", "last.pt", "metrics.jsonl", "train.csv", "val.csv", "curves.png", "summary.json"):
        assert (tmp_path / name).is_file(), name
    recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs if r["kind"] == "val"] == [10, 20, 30]
    assert "iou/crack" in recs[-1] or "iou/crack" in recs[-2]
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck["step"] == 30 and ck["config_sha256"] == _cfg(toy_dir, tmp_path, steps=30).sha256()
    model = model_from_checkpoint(ck)
    assert model(torch.rand(1, 1, 64, 64)).shape == (1, 5, 64, 64)


def test_keep_checkpoints_keeps_each_periodic_one(toy_dir, tmp_path):
    train(_cfg(toy_dir, tmp_path, steps=20, keep_checkpoints=True))
    kept = sorted(p.name for p in tmp_path.glob("step-*.pt"))
    assert kept == ["step-000010.pt", "step-000020.pt"]
    assert load_checkpoint(tmp_path / "step-000010.pt")["step"] == 10


def test_resume_continues_from_last_checkpoint(toy_dir, tmp_path):
    train(_cfg(toy_dir, tmp_path, steps=10))
    first = load_checkpoint(tmp_path / "last.pt")
    summary = train(_cfg(toy_dir, tmp_path, steps=20), resume=True)
    assert summary["start_step"] == 10 and summary["steps"] == 20
    second = load_checkpoint(tmp_path / "last.pt")
    assert second["step"] == 20
    assert not torch.equal(first["model"]["head.weight"], second["model"]["head.weight"])
    recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["kind"], r["step"]) for r in recs]
    assert len(keys) == len(set(keys))  # nothing logged twice
    assert [s for k, s in keys if k == "train"] == [5, 10, 15, 20]


def test_init_from_fine_tunes_a_checkpoint_and_refuses_another_architecture(toy_dir, tmp_path):
    train(_cfg(toy_dir, tmp_path / "a", steps=20))
    parent = tmp_path / "a" / "last.pt"
    # no steps at all: nothing to train, so the saved weights are the parent's
    cfg = _cfg(toy_dir, tmp_path / "b", steps=1, model={"name": "unet_mnv3s", "in_chans": 1, "init_from": str(parent)})
    cfg.optim.lr = 0.0
    train(cfg)
    a, b = load_checkpoint(parent)["model"], load_checkpoint(tmp_path / "b" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    scratch = _cfg(toy_dir, tmp_path / "c", steps=1)
    scratch.optim.lr = 0.0
    train(scratch)
    c = load_checkpoint(tmp_path / "c" / "last.pt")["model"]
    assert not torch.equal(a["head.weight"], c["head.weight"])
    other = _cfg(
        toy_dir, tmp_path / "d", steps=1, model={"name": "unet_mnv3s_lite", "in_chans": 1, "init_from": str(parent)}
    )
    with pytest.raises(ValueError, match="init_from"):
        train(other)


def test_init_from_an_onnx_export_fine_tunes_with_batchnorm_frozen(toy_dir, tmp_path):
    """A model whose checkpoint is gone (only its ONNX export ships) can still be trained on: the
    weights come back from the file, its folded BatchNorms stay frozen (identity statistics)."""
    import numpy as np

    from magspect.training.bn import recalibrate_checkpoint
    from magspect.training.export import export_checkpoint, sha256_file

    train(_cfg(toy_dir, tmp_path / "a", steps=20))
    parent = load_checkpoint(tmp_path / "a" / "last.pt")
    x = np.random.default_rng(0).random((1, 1, 64, 64), dtype=np.float32)
    onnx_path, _, _ = export_checkpoint(parent, tmp_path / "a.onnx", [x])
    cfg = _cfg(toy_dir, tmp_path / "b", steps=10, model={"name": "unet_mnv3s", "in_chans": 1,
                                                         "init_from": str(onnx_path)})
    assert cfg.bn_frozen() and not _cfg(toy_dir, tmp_path / "x").bn_frozen()
    train(cfg)
    ck = load_checkpoint(tmp_path / "b" / "last.pt")
    assert ck["bn_frozen"] is True and ck["init_from_sha256"] == sha256_file(onnx_path)
    sd = ck["model"]
    means = [k for k in sd if k.endswith("running_mean")]
    assert means and all(torch.count_nonzero(sd[k]) == 0 for k in means)  # still the folded identity
    assert not torch.equal(sd["head.weight"], parent["model"]["head.weight"])  # and it trained
    # it started where the parent ended: its first logged loss is near the parent's last, far below a
    # fresh network's first
    def losses(run):
        recs = [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in recs if r["kind"] == "train"]

    assert losses("b")[0] < 0.8 * losses("a")[0]
    with pytest.raises(ValueError, match="frozen BatchNorm"):
        recalibrate_checkpoint(str(tmp_path / "b" / "last.pt"), str(tmp_path / "r.pt"), n_views=1, size_px=64)
    # the same checks as for a checkpoint: another architecture, or a file that is not there
    for model, match in (({"name": "unet_mnv3s_lite", "in_chans": 1, "init_from": str(onnx_path)}, "holds unet_mnv3s"),
                         ({"name": "unet_mnv3s", "in_chans": 1, "init_from": str(tmp_path / "no.onnx")}, "not found"),
                         ({"name": "unet_mnv3s", "in_chans": 1, "init_from": str(tmp_path / "no.pt")}, "no such")):
        with pytest.raises(ValueError, match=match):
            train(_cfg(toy_dir, tmp_path / "c", steps=1, model=model))


def test_config_from_yaml_validates(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"data": {"crop_px": 100}}))
    with pytest.raises(ValidationError, match="multiple of 32"):
        TrainConfig.from_yaml(p)
    p.write_text(yaml.safe_dump({"optim": {"stepz": 3}}))
    with pytest.raises(ValidationError):
        TrainConfig.from_yaml(p)
    a = TrainConfig(out_dir="a")
    assert a.sha256() == TrainConfig(out_dir="b").sha256()  # where it writes is not part of the recipe
    assert a.sha256() != TrainConfig(seed=1).sha256()


@pytest.mark.parametrize(
    "name",
    ["default-model.yaml", "default-model-gpu.yaml", "default-model-gpu-ft.yaml", "default-model-gpu-ft2.yaml",
     "default-model-gpu-ft3.yaml", "default-model-cpu-ft4.yaml"],
)
def test_shipped_training_recipes_validate(name):
    from pathlib import Path

    cfg = TrainConfig.from_yaml(Path(__file__).parents[3] / "configs" / name)
    assert cfg.model.name == "unet_mnv3s_lite" and cfg.data.defect_bias + cfg.data.hard_bias <= 1
    if name == "default-model-gpu-ft.yaml":  # stage 2 starts from stage 1's best checkpoint
        assert cfg.model.init_from == Path("runs/default-gpu/best.pt") and cfg.data.hard_bias > 0
    if name == "default-model-gpu-ft2.yaml":  # stage 3: stage 2's checkpoint, crops steered by class and kind
        assert cfg.model.init_from == Path("runs/default-gpu-ft/best.pt")
    if name in ("default-model-gpu-ft3.yaml", "default-model-cpu-ft4.yaml"):  # stage 4: the bundled export, BN frozen
        assert str(cfg.model.init_from) == "bundled" and cfg.bn_frozen() and cfg.model.init_from_export()
        assert cfg.data.defect_class_weights["crack"] > cfg.data.defect_class_weights["chip"]
        assert max(cfg.data.hard_kind_weights, key=cfg.data.hard_kind_weights.get) == "lint"


def test_time_budget_ends_the_run_on_an_annealed_schedule(toy_dir, tmp_path):
    cfg = _cfg(toy_dir, tmp_path, steps=10_000, log_every=2)
    cfg.optim.warmup_steps = 1
    cfg.optim.time_budget_min = 0.1  # 6 s
    cfg.val.every_steps = 10_000
    summary = train(cfg)
    assert 0 < summary["steps"] < 10_000
    recs = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_recs = [r for r in recs if r["kind"] == "train"]
    assert train_recs[-1]["step"] == summary["steps"]
    lrs = [r["lr"] for r in train_recs]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < lrs[0]  # annealing along the wall clock
    assert [r["step"] for r in recs if r["kind"] == "val"] == [summary["steps"]]  # final validation


def test_lr_factor_warms_up_then_anneals():
    from magspect.training.loop import lr_factor

    cfg = TrainConfig(optim={"steps": 100, "warmup_steps": 10})
    assert lr_factor(cfg, 0, 0.0) == pytest.approx(0.1)
    assert lr_factor(cfg, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(cfg, 50, 0.5) == pytest.approx(0.51)
    assert lr_factor(cfg, 99, 1.0) == pytest.approx(0.02)


def test_render_cache_is_the_same_on_two_processes_and_keeps_lookalikes(tmp_path):
    from magspect.training.loop import render_cache

    def cfg(out):
        return TrainConfig.model_validate(
            {
                "out_dir": str(out),
                "progress": False,
                "data": {
                    "source": "synth",
                    "cache_dir": str(out / "data"),
                    "synth": {
                        "specs": ["def-blk-20x10x5-nicuni"],
                        "views": ["top"],
                        "seed": 7,
                        "n_parts": 3,
                        "synth": {"size_px": 128},
                    },
                },
            }
        )

    one = render_cache(cfg(tmp_path / "one"), workers=1)
    two = render_cache(cfg(tmp_path / "two"), workers=2)
    files = sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file())
    assert "lookalikes/def-blk-20x10x5-nicuni-0000007-top.json" in files and len(files) == 3 * 3 + 2
    for f in files:
        assert (one / f).read_bytes() == (two / f).read_bytes(), f
    boxes = json.loads((one / "lookalikes/def-blk-20x10x5-nicuni-0000008-top.json").read_text())
    assert boxes and all(
        len(b["bbox_xyxy_px"]) == 4 and b["kind"] in ("dust", "lint", "water_spot", "fingerprint", "glint")
        for b in boxes
    )
