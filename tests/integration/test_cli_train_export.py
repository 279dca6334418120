"""``magspect train`` and ``magspect export`` end to end on the toy dataset (tiny model, few steps)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.models.manifest import Manifest
from magspect.training.toy import write_toy_folder

runner = CliRunner()


def _write_config(tmp_path, steps=12, **over) -> tuple:
    toy = write_toy_folder(tmp_path / "toy", 6, 96, seed=0)
    cfg = {
        "out_dir": str(tmp_path / "run"),
        "num_threads": 1,
        "log_every": 4,
        "ckpt_every": 4,
        "model": {"name": "unet_mnv3s", "in_chans": 1},
        "data": {"source": "folder", "folder": str(toy), "crop_px": 64, "crops_per_part": 4},
        "val": {"source": "folder", "folder": str(toy), "n_parts": 2, "every_steps": 6},
        "optim": {"steps": steps, "batch_size": 4, "warmup_steps": 2},
    }
    cfg.update(over)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, tmp_path / "run"


def test_train_cli_runs_a_handful_of_steps(tmp_path):
    cfg, run = _write_config(tmp_path)
    res = runner.invoke(app, ["train", "--config", str(cfg), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "trained 12 steps" in res.output
    assert (run / "best.pt").is_file() and (run / "curves.png").is_file()
    res = runner.invoke(app, ["train", "--config", str(cfg), "--steps", "16", "--resume", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((run / "summary.json").read_text())["start_step"] == 12


def test_train_cli_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "config file not found" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {crop_px: 70}\n")
    res = runner.invoke(app, ["train", "--config", str(bad)])
    assert res.exit_code == 2 and "multiple of 32" in res.output and "Traceback" not in res.output


def test_export_cli_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["export", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m.onnx")])
    assert res.exit_code == 2 and "checkpoint not found" in res.output
    (tmp_path / "x.pt").write_bytes(b"")
    res = runner.invoke(app, ["export", str(tmp_path / "x.pt"), "--out", str(tmp_path / "m.txt")])
    assert res.exit_code == 2 and "must end in .onnx" in res.output


@pytest.mark.slow
def test_export_cli_fp32_and_int8(tmp_path):
    cfg, run = _write_config(tmp_path, steps=8)
    assert runner.invoke(app, ["train", "--config", str(cfg), "--no-progress"]).exit_code == 0
    out = tmp_path / "exp" / "tiny.onnx"
    res = runner.invoke(
        app,
        [
            "export",
            str(run / "best.pt"),
            "--out",
            str(out),
            "--int8",
            "--parity-views",
            "2",
            "--calib-views",
            "4",
            "--min-int8-agreement",
            "0.9",
            "--int8-views",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "parity ORT vs PyTorch" in res.output and "INT8 vs FP32" in res.output
    assert "loading 3 validation views" in res.output  # the INT8 comparison's, the parity check's 2 among them
    m = Manifest.from_onnx(out)
    m8 = Manifest.from_onnx(tmp_path / "exp" / "tiny-int8.onnx")
    assert m.precision == "fp32" and m8.precision == "int8"
    assert m8.float_model_sha256 == m.float_model_sha256
    assert m8.parity["int8_vs_fp32_argmax_agreement"] >= 0.9
    assert (tmp_path / "exp" / "tiny.manifest.json").is_file()
    assert (tmp_path / "exp" / "tiny-int8.manifest.json").is_file()
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    y = sess.run(["logits"], {"image": np.zeros((1, 1, 64, 96), np.float32)})[0]
    assert y.shape == (1, 5, 64, 96)


@pytest.mark.slow
def test_ddp_two_cpu_processes_on_gloo(tmp_path):
    cfg, run = _write_config(tmp_path, steps=6)
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "magspect",
        "train",
        "--config",
        str(cfg),
        "--no-progress",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 6
    assert summary["crops_seen"] == 6 * 4  # rank 0's share; rank 1 trained its own crops
