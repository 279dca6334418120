"""Model registry: versioning, lineage, metrics, gated promotion, rollback, promoted_model_path.

A registry only needs an ONNX file with a manifest beside it, so these tests write a one-node ONNX
graph (no torch) with a real magspect manifest."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from magspect.models.manifest import Manifest, Preprocess, manifest_path_for
from magspect.models.registry import (
    ModelRegistry,
    RegistryError,
    check_promotion,
    default_registry_path,
    promoted_model_path,
)


def _fake_model(path, scale: float = 1.0):
    """A 1 -> 5 channel 1x1 convolution with a magspect manifest (distinct bytes per ``scale``)."""
    w = helper.make_tensor("w", TensorProto.FLOAT, [5, 1, 1, 1], (np.arange(5) * scale).astype(np.float32).tolist())
    node = helper.make_node("Conv", ["image", "w"], ["logits"])
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 5, "h", "w"])],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    m = Manifest(model_name="unet_mnv3s", in_channels=1,
                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
    m.write(manifest_path_for(path))
    return path


def _metrics(escape: float, suite: str = "magsynth-v1/test[:10]") -> dict:
    return {suite: {"escape_rate": escape, "false_reject_rate": 0.1}}


@pytest.fixture
def reg(tmp_path):
    return ModelRegistry(tmp_path / "reg")


def test_register_versions_copies_and_lineage(reg, tmp_path):
    a = _fake_model(tmp_path / "a.onnx", 1.0)
    b = _fake_model(tmp_path / "b.onnx", 2.0)
    lineage = {"parent": {"ref": "bundled", "sha256": "ab" * 32}, "data": {"real": {"val_sha256": "cd" * 32}}}
    v1 = reg.register(a, metrics=_metrics(0.05), lineage=lineage, notes="first")
    v2 = reg.register(b, lineage={"parent": {"registry_version": v1.version}})
    assert (v1.version, v2.version) == ("v0001", "v0002")
    assert reg.versions() == ["v0001", "v0002"]
    assert v1.onnx_path.read_bytes() == a.read_bytes() and v1.onnx_path != a
    assert v1.manifest().model_name == "unet_mnv3s"
    assert v1.info["sha256"] != v2.info["sha256"]
    assert reg.get("1").lineage == lineage and reg.get("latest").version == "v0002"
    assert reg.get("v0002").parent == "v0001"
    assert reg.get("v0001").metrics == _metrics(0.05) and reg.get("v0001").info["notes"] == "first"
    with pytest.raises(RegistryError, match="no version '7'"):
        reg.get("7")
    with pytest.raises(RegistryError, match="no such model file"):
        reg.register(tmp_path / "missing.onnx")


def test_promote_then_rollback(reg, tmp_path):
    assert promoted_model_path(reg) is None
    v1 = reg.register(_fake_model(tmp_path / "a.onnx", 1.0), metrics=_metrics(0.10))
    v2 = reg.register(_fake_model(tmp_path / "b.onnx", 2.0), metrics=_metrics(0.08))
    v3 = reg.register(_fake_model(tmp_path / "c.onnx", 3.0), metrics=_metrics(0.08))
    assert reg.promote(v1.version).reasons == ["no champion yet: first promotion"]
    with pytest.raises(RegistryError, match="first promoted model"):
        reg.rollback()
    assert reg.promote(v2.version).allowed
    assert reg.promote(v3.version).allowed  # equal escape rate: not worse
    assert promoted_model_path(reg) == v3.onnx_path
    assert reg.rollback().version == "v0002"
    assert reg.rollback().version == "v0001"
    assert promoted_model_path(reg.root) == v1.onnx_path
    assert [h["action"] for h in reg.history()] == ["promote", "promote", "promote", "rollback", "rollback"]


def test_promotion_refused_on_worse_escape_rate_with_numbers(reg, tmp_path):
    champ = reg.register(_fake_model(tmp_path / "a.onnx", 1.0), metrics=_metrics(0.02))
    chall = reg.register(_fake_model(tmp_path / "b.onnx", 2.0), metrics=_metrics(0.05))
    reg.promote(champ.version)
    with pytest.raises(RegistryError) as exc:
        reg.promote(chall.version, max_escape_rate_increase=0.01)
    msg = str(exc.value)
    assert "refused" in msg and "5.00 %" in msg and "2.00 %" in msg and "3.00 points" in msg and "1.00 points" in msg
    assert reg.promoted().version == champ.version
    # within a wider margin it passes; the registry's own policy is the default margin
    reg.set_policy(max_escape_rate_increase=0.05)
    assert reg.promote(chall.version).allowed
    assert reg.promoted().version == chall.version


def test_forced_promotion_is_recorded(reg, tmp_path):
    champ = reg.register(_fake_model(tmp_path / "a.onnx", 1.0), metrics=_metrics(0.0))
    chall = reg.register(_fake_model(tmp_path / "b.onnx", 2.0), metrics=_metrics(0.5))
    reg.promote(champ.version)
    d = reg.promote(chall.version, force=True, reason="line stopped, known issue")
    assert not d.allowed and reg.promoted().version == chall.version
    assert reg.history()[-1]["forced"] is True and reg.history()[-1]["note"] == "line stopped, known issue"


def test_check_promotion_needs_a_shared_suite():
    d = check_promotion(_metrics(0.1, "a"), _metrics(0.0, "b"))
    assert not d.allowed and "no suite with an escape rate measured for both" in d.message()
    d = check_promotion({"s": {"escape_rate": 0.10}, "t": {"escape_rate": 0.0}},
                        {"s": {"escape_rate": 0.05}, "t": {"escape_rate": 0.02}}, 0.01)
    assert not d.allowed and d.compared_suites == ["s", "t"]
    assert check_promotion({"s": {"escape_rate": 0.10}}, {"s": {"escape_rate": 0.105}}, 0.01).allowed


def test_tampered_model_is_not_served(reg, tmp_path):
    v1 = reg.register(_fake_model(tmp_path / "a.onnx"))
    reg.promote(v1.version)
    v1.onnx_path.write_bytes(v1.onnx_path.read_bytes() + b"x")
    with pytest.raises(RegistryError, match="was changed"):
        promoted_model_path(reg)


def test_add_metrics_and_default_path(reg, tmp_path, monkeypatch):
    v1 = reg.register(_fake_model(tmp_path / "a.onnx"))
    reg.add_metrics(v1.version, "real-val:abc", {"escape_rate": 0.25, "image_auroc": 0.9})
    assert json.loads((v1.folder / "metrics.json").read_text())["real-val:abc"]["image_auroc"] == 0.9
    monkeypatch.delenv("MAGSPECT_MODELS", raising=False)
    monkeypatch.setenv("MAGSPECT_HOME", str(tmp_path / "home"))
    assert default_registry_path() == tmp_path / "home" / "models"
    monkeypatch.setenv("MAGSPECT_MODELS", str(tmp_path / "m"))
    assert default_registry_path() == tmp_path / "m"


def test_registry_module_is_torch_free():
    code = "import sys, magspect.models.registry as r; r.promoted_model_path; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
