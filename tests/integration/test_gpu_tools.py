"""``tools/gpu/``: the scripts a session lent a GPU machine runs. ``train.sh`` is run here on the
CPU with a toy recipe (the GPU machine runs the same lines with its own Python); ``fetch-wheels.sh``
refuses when the environment it copies versions from lacks a package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from magspect.training.toy import write_toy_folder

ROOT = Path(__file__).parents[2]


def test_train_script_trains_and_copies_the_run_out(tmp_path):
    toy = write_toy_folder(tmp_path / "toy", 6, 96, seed=0)
    cfg = {"out_dir": str(tmp_path / "run"), "num_threads": 1, "log_every": 2, "ckpt_every": 2,
           "model": {"name": "unet_mnv3s", "in_chans": 1},
           "data": {"source": "folder", "folder": str(toy), "crop_px": 64, "crops_per_part": 4},
           "val": {"source": "folder", "folder": str(toy), "n_parts": 2, "every_steps": 3},
           "optim": {"steps": 3, "batch_size": 4, "warmup_steps": 1}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    env = {**os.environ, "PY": sys.executable, "OUT": str(out), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", "tools/gpu/train.sh", str(tmp_path / "tiny.yaml")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "torch" in res.stdout and "trained 3 steps" in (out / "train.log").read_text()
    for name in ("last.pt", "best.pt", "summary.json", "metrics.jsonl", "curves.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["steps"] == 3


def test_train_script_passes_a_failed_run_on(tmp_path):
    (tmp_path / "bad.yaml").write_text("data: {crop_px: 70}\n")
    env = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out")}
    res = subprocess.run(["bash", "tools/gpu/train.sh", str(tmp_path / "bad.yaml")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0


def test_fetch_wheels_refuses_without_the_packages(tmp_path):
    res = subprocess.run(["bash", str(ROOT / "tools/gpu/fetch-wheels.sh"), "false"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "pydantic is not installed" in res.stderr
