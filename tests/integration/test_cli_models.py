"""``magspect models``: list, show, register, compare on a real-data split, gated promote, rollback.

The models are one-node ONNX graphs (a 1x1 convolution) with an embedded magspect manifest: one
always answers "good surface" (it misses every defect), one always answers "coating flaw"."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess, manifest_path_for
from magspect.models.registry import ModelRegistry, promoted_model_path
from magspect.training.realdata import write_toy_tiles

runner = CliRunner()


def _const_model(path, cls: int):
    """Logits = 10 * x for class ``cls``, 0 elsewhere (x > 0 on every toy image)."""
    w = np.zeros((5, 1, 1, 1), np.float32)
    w[cls] = 10.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["logits"])], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 5, "h", "w"])],
        [helper.make_tensor("w", TensorProto.FLOAT, [5, 1, 1, 1], w.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    m = Manifest(model_name="unet_mnv3s", in_channels=1,
                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
    model.metadata_props.add(key=METADATA_KEY, value=m.to_json(indent=None))
    onnx.save(model, str(path))
    m.write(manifest_path_for(path))
    return path


def test_register_list_show_promote_rollback(tmp_path):
    reg = ["--registry", str(tmp_path / "reg")]
    a = _const_model(tmp_path / "blind.onnx", 1)
    b = _const_model(tmp_path / "eager.onnx", 4)
    res = runner.invoke(app, ["models", "register", str(a), "--notes", "champion", "--promote", *reg])
    assert res.exit_code == 0, res.output
    assert "registered" in res.output and "promoted v0001" in res.output
    assert runner.invoke(app, ["models", "register", str(b), *reg]).exit_code == 0
    res = runner.invoke(app, ["models", "list", "--json", *reg])
    rows = json.loads(res.output)
    assert [(r["version"], r["promoted"]) for r in rows] == [("v0001", True), ("v0002", False)]
    show = json.loads(runner.invoke(app, ["models", "show", "latest", *reg]).output)
    assert show["version"] == "v0002" and show["onnx"].endswith("model.onnx")
    # no shared suite yet: refused, and told what to do
    res = runner.invoke(app, ["models", "promote", "v0002", *reg])
    assert res.exit_code == 1 and "models compare" in res.output
    assert runner.invoke(app, ["models", "promote", "2", "--force", *reg]).exit_code == 0
    assert promoted_model_path(tmp_path / "reg").parent.name == "v0002"
    res = runner.invoke(app, ["models", "path", *reg])
    assert res.exit_code == 0 and res.output.strip() == str(promoted_model_path(tmp_path / "reg"))
    res = runner.invoke(app, ["models", "rollback", *reg])
    assert res.exit_code == 0 and "v0001 is promoted again" in res.output
    res = runner.invoke(app, ["models", "show", "9", *reg])
    assert res.exit_code == 2 and "no version '9'" in res.output


def test_compare_on_real_split_then_gate(tmp_path):
    reg_path = tmp_path / "reg"
    reg = ["--registry", str(reg_path)]
    tiles = write_toy_tiles(tmp_path / "tiles", 3, seed=7)
    r = ModelRegistry(reg_path)
    eager = r.register(_const_model(tmp_path / "eager.onnx", 4))
    blind = r.register(_const_model(tmp_path / "blind.onnx", 1))
    r.promote(eager.version)
    out = tmp_path / "cmp.json"
    res = runner.invoke(app, ["models", "compare", "promoted", blind.version, "--magsynth-n", "0", "--data", str(tiles),
                              "--val-fraction", "0.5", "--json", str(out), *reg])
    assert res.exit_code == 0, res.output
    assert "escape_rate" in res.output and "REFUSED" in res.output
    figs = json.loads(out.read_text())["results"]
    key = next(iter(figs[eager.version]))
    assert key.startswith("real-val:")
    assert figs[eager.version][key]["escape_rate"] == 0.0 and figs[blind.version][key]["escape_rate"] == 1.0
    # the figures are stored, so promote applies the gate and says why, with numbers
    res = runner.invoke(app, ["models", "promote", blind.version, *reg])
    assert res.exit_code == 1
    assert "100.00 %" in res.output and "0.00 %" in res.output and "refused" in res.output
    assert r.promoted().version == eager.version
