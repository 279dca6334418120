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
    assert res.exit_code == 2 and "data.crop_px" in res.output and "multiple of 32" in res.output
    assert "Traceback" not in res.output


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
    assert "calibrated on 8 crops at the 99.9th percentile" in " ".join(res.output.split())  # wrapped lines
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


def _said(res) -> str:
    """The command's output with the console's line wrapping undone."""
    return " ".join(res.output.split())


def _tiny_fp32_export(path):
    """An untrained tiny network (with BatchNorm statistics from a few batches) exported to FP32."""
    from magspect.training.export import export_checkpoint
    from magspect.training.toy import toy_checkpoint

    x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
    return export_checkpoint(toy_checkpoint(), path, [x])[0]


def test_quantize_cli_makes_int8_from_an_fp32_export(tmp_path):
    """INT8 from an FP32 file without its checkpoint (as for the bundled model): calibrated on the
    recipe's data, compared on its validation views, the recipe written into the manifest; an INT8
    file or an unknown percentile is refused."""
    cfg, _ = _write_config(tmp_path)
    fp32 = _tiny_fp32_export(tmp_path / "tiny.onnx")
    out = tmp_path / "q" / "tiny-int8.onnx"
    out.parent.mkdir()
    args = ["quantize", str(fp32), "--config", str(cfg), "--out", str(out), "--calib-views", "3",
            "--int8-views", "2", "--min-int8-agreement", "0.5"]
    res = runner.invoke(app, [*args, "--percentile", "99.99"])
    assert res.exit_code == 0, res.output
    assert "6 calibration crops, percentile 99.99" in _said(res) and "INT8 vs FP32 argmax agreement" in _said(res)
    m, m8 = Manifest.from_onnx(fp32), Manifest.from_onnx(out)
    assert m8.precision == "int8" and m8.float_model_sha256 == m.float_model_sha256
    assert m8.parity["int8_calib_percentile"] == 99.99 and m8.parity["int8_calib_inputs"] == 6
    assert m8.parity["int8_vs_fp32_argmax_agreement"] >= 0.5
    assert (out.parent / "tiny-int8.manifest.json").is_file()
    res = runner.invoke(app, ["quantize", str(out), "--config", str(cfg), "--out", str(tmp_path / "again.onnx")])
    assert res.exit_code == 2 and "already int8" in _said(res)
    res = runner.invoke(app, [*args, "--percentile", "40"])
    assert res.exit_code == 2 and "--percentile must be in (50, 100]" in _said(res)
    res = runner.invoke(app, [*args, "--min-int8-agreement", "1.01"])  # the gate fails: exit 3
    assert res.exit_code == 3 and "agrees with FP32 on only" in _said(res)


def test_quantize_cli_errors_are_one_line(tmp_path):
    from magspect.training.quantize import CALIB_PERCENTILE

    res = subprocess.run([sys.executable, "-c", "import sys, magspect.cli.main; print('torch' in sys.modules)"],
                         capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False"  # the verbs' modules, quantize's defaults included, load without torch
    help_text = _said(runner.invoke(app, ["quantize", "--help"]))
    assert f"default: {CALIB_PERCENTILE}" in help_text  # the CLI's default is the library's
    cfg, _ = _write_config(tmp_path)
    res = runner.invoke(app, ["quantize", str(tmp_path / "no.onnx"), "--config", str(cfg), "--out", "x.onnx"])
    assert res.exit_code == 2 and "model not found" in _said(res)
    fp32 = tmp_path / "m.onnx"
    fp32.write_bytes(b"not onnx")
    res = runner.invoke(app, ["quantize", str(fp32), "--config", str(cfg), "--out", str(tmp_path / "m.txt")])
    assert res.exit_code == 2 and "must end in .onnx" in _said(res)
    res = runner.invoke(app, ["quantize", str(fp32), "--config", str(cfg), "--out", str(fp32)])
    assert res.exit_code == 2 and "new path" in _said(res)
    res = runner.invoke(app, ["quantize", str(fp32), "--config", str(tmp_path / "no.yaml"), "--out", "x.onnx"])
    assert res.exit_code == 2 and "config file not found" in _said(res)
    res = runner.invoke(app, ["quantize", str(fp32), "--config", str(cfg), "--out", str(tmp_path / "q.onnx")])
    assert res.exit_code == 2 and "Traceback" not in _said(res)  # not an ONNX model: the loader's message
