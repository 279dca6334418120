"""Fine-tuning on real data: config, data fitting and mixing, weights recovered from ONNX, a tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from magspect.training.realdata import open_labelled, split_by_content, write_toy_tiles
from magspect.training.retrain import (
    MixedSource,
    RetrainConfig,
    evaluate_real,
    fit_for_training,
    load_onnx_weights,
    real_suite_key,
    run_retrain,
)
from magspect.types import CLASS_IDS

torch.set_num_threads(1)


def test_config_validation(tmp_path):
    with pytest.raises(ValidationError, match="class_map"):
        RetrainConfig.model_validate({"real": {"kind": "coco", "path": "x.json"}})
    with pytest.raises(ValidationError, match="multiple of 32"):
        RetrainConfig.model_validate({"real": {"path": "x"}, "train": {"crop_px": 100}})
    with pytest.raises(ValidationError, match="ratio"):
        RetrainConfig.model_validate({"real": {"path": "x"}, "synth": {"ratio": 1.0}})
    a = RetrainConfig.model_validate({"real": {"path": "x"}, "out_dir": "a"})
    b = RetrainConfig.model_validate({"real": {"path": "x"}, "out_dir": "b"})
    c = RetrainConfig.model_validate({"real": {"path": "x"}, "train": {"lr": 1e-3}})
    assert a.sha256() == b.sha256() != c.sha256()


def test_fit_for_training_pads_small_and_shrinks_large():
    img = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30).astype(np.uint8)
    mask = np.ones((40, 30), np.uint8)
    mask[5, :] = CLASS_IDS["crack"]
    x, m = fit_for_training(img, mask, 128, None)
    assert x.shape == m.shape == (128, 128)
    assert (x[:40, :30] == img).all() and (m[:40, :30] == mask).all()
    assert set(np.unique(m)) == {1, 2}  # reflected, never a made-up class
    big = np.zeros((600, 300), np.uint8)
    bm = np.ones((600, 300), np.uint8)
    x, m = fit_for_training(big, bm, 128, 256)
    assert x.shape == m.shape == (256, 128)


class _Const:
    def __init__(self, v):
        self.v = v

    def sample(self, rng):
        return self.v


def test_mixed_source_ratio():
    mix = MixedSource(_Const("real"), _Const("synth"), 0.25)
    rng = np.random.default_rng(0)
    share = sum(mix.sample(rng) == "synth" for _ in range(4000)) / 4000
    assert 0.22 < share < 0.28
    assert MixedSource(_Const("real"), None, 0.5).sample(rng) == "real"


def _fold_to_onnx(model: torch.nn.Module, path) -> None:
    """Write ``model``'s weights as the exporter leaves them: BatchNorm folded into the convolution
    before it (``<conv>.weight`` + a ``<conv>.weight_bias``), other tensors under their own names."""
    import onnx
    from onnx import helper, numpy_helper

    mods = dict(model.named_modules())
    sd = model.state_dict()
    inits, nodes, folded = [], [], set()
    for name, mod in mods.items():
        if not isinstance(mod, torch.nn.Conv2d):
            continue
        parent, _, idx = name.rpartition(".")
        nxt = mods.get(f"{parent}.{int(idx) + 1}") if idx.isdigit() else None
        w = mod.weight.detach().clone()
        b = mod.bias.detach().clone() if mod.bias is not None else torch.zeros(w.shape[0])
        if isinstance(nxt, torch.nn.BatchNorm2d):
            s = nxt.weight / torch.sqrt(nxt.running_var + nxt.eps)
            w, b = w * s.view(-1, 1, 1, 1), (b - nxt.running_mean) * s + nxt.bias
            folded.add(f"{parent}.{int(idx) + 1}")
        wn = f"net.{name}.weight"
        inits += [numpy_helper.from_array(w.detach().numpy(), wn), numpy_helper.from_array(b.detach().numpy(),
                                                                                          wn + "_bias")]
        nodes.append(helper.make_node("Conv", ["x", wn, wn + "_bias"], [f"y{len(nodes)}"]))
    for k, v in sd.items():
        owner = k.rpartition(".")[0]
        if owner not in folded and not isinstance(mods.get(owner), torch.nn.Conv2d):
            inits.append(numpy_helper.from_array(v.detach().numpy(), f"net.{k}"))
    graph = helper.make_graph(nodes, "weights", [], [], inits)
    onnx.save(helper.make_model(graph), str(path))


def test_weights_recovered_from_a_folded_onnx(tmp_path):
    from magspect.models import create_model

    torch.manual_seed(0)
    ref = create_model("unet_mnv3s", in_chans=1)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding matters
        for m in ref.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ref.eval()
    _fold_to_onnx(ref, tmp_path / "m.onnx")
    got = create_model("unet_mnv3s", in_chans=1)
    load_onnx_weights(got, tmp_path / "m.onnx")
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        assert float((got.eval()(x) - ref(x)).abs().max()) < 1e-4
    wrong = create_model("unet_mnv3s", in_chans=3)
    with pytest.raises(ValueError, match="shape"):
        load_onnx_weights(wrong, tmp_path / "m.onnx")


def test_weights_recovered_from_a_lite_export_with_split_reduce(tmp_path):
    """The real exporter writes each lite decoder block's reduce split in two (conv_x, conv_s,
    BatchNorm folded): the parent network rebuilt from that file computes what the exported one does."""
    from magspect.models import create_model
    from magspect.training.export import export_onnx

    torch.manual_seed(1)
    ref = create_model("unet_mnv3s_lite", in_chans=1)
    ref.train()
    with torch.no_grad():
        for _ in range(3):
            ref(torch.rand(2, 1, 64, 64))
    export_onnx(ref.eval(), tmp_path / "lite.onnx", 1)
    got = create_model("unet_mnv3s_lite", in_chans=1)
    load_onnx_weights(got, tmp_path / "lite.onnx")
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        assert float((got.eval()(x) - ref(x)).abs().max()) < 1e-4


class _Oracle:
    """A segmenter that returns the truth (or nothing) as logits."""

    def __init__(self, data, blind: bool = False):
        self.masks = [data.load(i)[1] for i in range(len(data))]
        self.blind, self.i = blind, 0

    def logits(self, images):
        out = []
        for _ in images:
            m = self.masks[self.i]
            self.i += 1
            cls = np.ones_like(m) if self.blind else m
            out.append(np.eye(5, dtype=np.float32)[cls].transpose(2, 0, 1) * 10)
        return out


def test_evaluate_real_escape_rate(tmp_path):
    data = open_labelled("mask-folder", write_toy_tiles(tmp_path / "t", 2, seed=5))
    perfect = evaluate_real(_Oracle(data), data, min_defect_px=4)
    assert perfect["escape_rate"] == 0.0 and perfect["false_reject_rate"] == 0.0 and perfect["image_auroc"] == 1.0
    blind = evaluate_real(_Oracle(data, blind=True), data, min_defect_px=4)
    assert blind["escape_rate"] == 1.0 and blind["n_escapes"] == 6 and blind["false_reject_rate"] == 0.0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrain")
    root = write_toy_tiles(tmp / "tiles", 4, seed=0)
    cfg = RetrainConfig.model_validate({
        "out_dir": str(tmp / "run"), "num_threads": 1, "progress": False, "parent": "scratch:unet_mnv3s",
        "real": {"path": str(root), "val_fraction": 0.3},
        "synth": {"ratio": 0.0},
        "train": {"steps": 40, "batch_size": 2, "crop_px": 64, "warmup_steps": 2, "lr": 3e-3},
        # min_delta so large that nothing counts as progress: early stop after `patience` validations
        "early_stop": {"every_steps": 3, "patience": 2, "min_delta": 10.0},
        "export": {"enabled": False},
    })
    return cfg, run_retrain(cfg, log=lambda *a: None)


def test_tiny_retrain_stops_early_and_writes_lineage(tiny_run):
    cfg, summary = tiny_run
    assert summary["stopped_early"] and summary["steps"] == 6 < cfg.train.steps
    assert np.isfinite(summary["first_loss"]) and np.isfinite(summary["final_loss"])
    out = cfg.out_dir
    assert (out / "best.pt").is_file()
    lineage = json.loads((out / "lineage.json").read_text())
    real = lineage["data"]["real"]
    data = open_labelled("mask-folder", cfg.real.path)
    split = split_by_content(data, 0.3)
    assert real["val_sha256"] == split.val_sha256 and real["n_train"] + real["n_val"] == 16
    assert summary["suite_key"] == real_suite_key(split)
    assert lineage["parent"]["ref"] == "scratch:unet_mnv3s" and lineage["config_sha256"] == cfg.sha256()
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == [3, 6]


def test_no_early_stop_before_min_steps(tiny_run, tmp_path):
    cfg, _ = tiny_run
    late = cfg.model_copy(update={"out_dir": tmp_path / "late", "train": cfg.train.model_copy(update={"steps": 12}),
                                  "early_stop": cfg.early_stop.model_copy(update={"min_steps": 9})})
    s = run_retrain(late, log=lambda *a: None)
    assert s["stopped_early"] and s["steps"] == 9


def test_fine_tune_from_a_checkpoint_parent(tiny_run, tmp_path):
    cfg, _ = tiny_run
    from magspect.training.checkpoint import load_checkpoint

    parent = cfg.out_dir / "best.pt"
    child = cfg.model_copy(update={
        "out_dir": tmp_path / "child", "parent": str(parent),
        "train": cfg.train.model_copy(update={"steps": 3}),
        "early_stop": cfg.early_stop.model_copy(update={"every_steps": 3, "min_delta": 0.0}),
    })
    s = run_retrain(child, log=lambda *a: None)
    assert s["steps"] == 3 and not s["stopped_early"]
    lineage = json.loads((tmp_path / "child" / "lineage.json").read_text())
    assert lineage["parent"]["kind"] == "checkpoint" and lineage["parent"]["path"] == str(parent)
    ck = load_checkpoint(tmp_path / "child" / "best.pt")
    assert ck["model_name"] == "unet_mnv3s" and ck["in_chans"] == 1 and "real_mean_iou" in ck["val_metrics"]
