"""The manifest: JSON round trip, validation, and reading it back from ONNX metadata via onnxruntime."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper
from pydantic import ValidationError

from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess, manifest_path_for


def _manifest(**kw) -> Manifest:
    base = dict(
        model_name="unet_mnv3s",
        in_channels=1,
        preprocess=Preprocess(bit_depth=16, color="gray", mean=(0.5,), std=(0.25,)),
        um_per_px=25.0,
        validation_metrics={"miou_defects": 0.5},
        training_config_sha256="ab" * 32,
    )
    base.update(kw)
    return Manifest(**base)


def test_json_round_trip_and_file(tmp_path):
    m = _manifest()
    assert Manifest.from_json(m.to_json()) == m
    p = m.write(tmp_path / "x.manifest.json")
    assert Manifest.from_file(p) == m
    assert manifest_path_for(tmp_path / "model.onnx").name == "model.manifest.json"


def test_documented_io_and_scaling():
    m = _manifest()
    assert (m.input.name, m.input.layout) == ("image", "NCHW")
    assert (m.output.name, m.output.layout) == ("logits", "NCHW")
    assert m.num_classes == 5 and m.classes[2] == "crack"
    assert m.preprocess.divisor_for("uint8") == 255.0
    assert m.preprocess.divisor_for("uint16") == 65535.0
    with pytest.raises(ValueError, match="no input scaling"):
        m.preprocess.divisor_for("float32")


@pytest.mark.parametrize(
    "kw",
    [
        {"in_channels": 3},  # gray preprocess with 3 channels
        {"tile_size_px": 500},  # not a multiple of 32
        {"unknown_field": 1},
    ],
)
def test_invalid_manifests_are_rejected(kw):
    with pytest.raises(ValidationError):
        _manifest(**kw)


def test_from_onnx_reads_metadata_with_onnxruntime(tmp_path):
    node = helper.make_node("Identity", ["image"], ["logits"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1, "H", "W"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    path = tmp_path / "id.onnx"
    onnx.save(model, path)
    with pytest.raises(ValueError, match="no 'magspect.manifest' metadata"):
        Manifest.from_onnx(path)
    m = _manifest()
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, m.to_json()
    onnx.save(model, path)
    assert Manifest.from_onnx(path) == m
