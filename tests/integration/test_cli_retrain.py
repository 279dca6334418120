"""``magspect data check`` and ``magspect retrain`` end to end on tiny tile folders made here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.training.realdata import write_toy_tiles

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
MT_MAP = REPO / "configs" / "class-map-magnetic-tile.yaml"


def test_data_check_reports_counts_split_and_warnings(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 3, seed=0)
    m = sorted((root / "MT_Crack" / "Imgs").glob("*.png"))[0]
    import cv2

    cv2.imwrite(str(m), np.zeros(cv2.imread(str(m)).shape[:2], np.uint8))
    out = tmp_path / "rep.json"
    res = runner.invoke(app, ["data", "check", str(root), "--class-map", str(MT_MAP), "--val-fraction", "0.3",
                              "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "12 images, 9 with defects" in res.output and "empty mask" in res.output and "split:" in res.output
    rep = json.loads(out.read_text())
    assert rep["per_target"] == {"chip": 3, "coating_flaw": 3, "crack": 3, "none": 3}
    assert rep["split"]["n_train"] + rep["split"]["n_val"] == 12


def test_data_check_lists_every_error_and_exits_1(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 2, seed=1)
    next((root / "MT_Break" / "Imgs").glob("*.png")).unlink()
    (root / "MT_Oops").mkdir()
    res = runner.invoke(app, ["data", "check", str(root), "--class-map", str(MT_MAP)])
    assert res.exit_code == 1
    assert "2 problem(s)" in res.output and "no mask" in res.output and "MT_Oops" in res.output
    assert "Traceback" not in res.output


def _config(tmp_path, **over) -> Path:
    root = write_toy_tiles(tmp_path / "tiles", 4, seed=2)
    cfg = {
        "out_dir": str(tmp_path / "run"), "num_threads": 1, "parent": "scratch:unet_mnv3s",
        "real": {"path": str(root), "class_map": str(MT_MAP), "val_fraction": 0.3},
        "synth": {"ratio": 0.0},
        "train": {"steps": 4, "batch_size": 2, "crop_px": 64, "warmup_steps": 1},
        "early_stop": {"every_steps": 2, "patience": 5},
        "registry": {"path": str(tmp_path / "reg")},
    }
    cfg.update(over)
    p = tmp_path / "retrain.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_retrain_cli_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["retrain", "--config", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "config file not found" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("real: {kind: coco, path: x.json}\n")
    res = runner.invoke(app, ["retrain", "--config", str(bad)])
    assert res.exit_code == 2 and "class_map" in res.output and "Traceback" not in res.output
    cfg = _config(tmp_path)
    res = runner.invoke(app, ["retrain", "--config", str(cfg), "--parent", str(tmp_path / "none.onnx")])
    assert res.exit_code == 2 and "parent model" in res.output and "not found" in res.output
    missing = _config(tmp_path, real={"path": str(tmp_path / "void")})
    res = runner.invoke(app, ["retrain", "--config", str(missing)])
    assert res.exit_code == 2 and "no such folder" in res.output


def test_retrain_cli_few_steps_without_export(tmp_path):
    cfg = _config(tmp_path, export={"enabled": False})
    res = runner.invoke(app, ["retrain", "--config", str(cfg), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "fine-tuned 4 steps" in res.output and (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.slow
def test_retrain_cli_exports_and_registers_then_models_cli(tmp_path):
    cfg = _config(tmp_path, export={"int8": True})
    res = runner.invoke(app, ["retrain", "--config", str(cfg), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "registered v0001" in res.output and "parity max |logit diff|" in res.output
    from magspect.models.registry import ModelRegistry

    reg = ModelRegistry(tmp_path / "reg")
    mv = reg.get("v0001")
    key = json.loads((tmp_path / "run" / "summary.json").read_text())["suite_key"]
    assert key in mv.metrics and mv.metrics[key]["n_images"] > 0
    assert mv.lineage["data"]["real"]["class_map_sha256"] and mv.manifest().validation_metrics
    from magspect.models.manifest import Manifest
    from magspect.training.quantize import CALIB_PERCENTILE

    m8 = Manifest.from_onnx(mv.int8_path)  # calibrated on the real validation images, compared on them
    assert m8.precision == "int8" and m8.parity["int8_calib_percentile"] == CALIB_PERCENTILE
    assert 0.0 <= m8.parity["int8_vs_fp32_argmax_agreement"] <= 1.0
    # a second model fine-tuned from the first (registry parent), then champion/challenger
    res = runner.invoke(app, ["retrain", "--config", str(cfg), "--parent", "registry:v0001", "--steps", "2",
                              "--out-dir", str(tmp_path / "run2"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert reg.get("v0002").lineage["parent"]["registry_version"] == "v0001"
    reg_opt = ["--registry", str(tmp_path / "reg")]
    assert runner.invoke(app, ["models", "promote", "v0001", *reg_opt]).exit_code == 0
    res = runner.invoke(app, ["models", "compare", "promoted", "latest", "--magsynth-n", "0", *reg_opt])
    assert res.exit_code == 0, res.output
    assert key in res.output and "promotion of v0002 over v0001" in res.output


@pytest.mark.slow
def test_retrain_ddp_two_cpu_processes_on_gloo(tmp_path):
    cfg = _config(tmp_path, export={"enabled": False})
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "magspect", "retrain", "--config", str(cfg), "--no-progress"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 4
    assert json.loads((tmp_path / "run" / "lineage.json").read_text())["training"]["world_size"] == 2
