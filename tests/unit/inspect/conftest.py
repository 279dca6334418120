"""A tiny hand-built ONNX segmenter (no torch): one 5x5 convolution, 1 -> 5 classes."""

import numpy as np
import pytest

from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess


def build_tiny_onnx(path, *, tile=64, overlap=16, multiple=8, seed=0, channels=1):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.normal(0, 1, (5, channels, 5, 5)).astype(np.float32)
    b = rng.normal(0, 0.1, (5,)).astype(np.float32)
    node = helper.make_node("Conv", ["image", "w", "b"], ["logits"], pads=[2, 2, 2, 2])
    graph = helper.make_graph(
        [node],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5, "H", "W"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    manifest = Manifest(
        model_name="tiny_conv",
        in_channels=channels,
        preprocess=Preprocess(bit_depth=8, color="gray" if channels == 1 else "rgb",
                              mean=(0.5,) * channels, std=(0.25,) * channels),
        input_multiple=multiple,
        tile_size_px=tile,
        tile_overlap_px=overlap,
        um_per_px=25.0,
    )
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, manifest.to_json(indent=None)
    onnx.save(model, str(path))
    return path, w, b


@pytest.fixture
def tiny_onnx(tmp_path):
    path, _, _ = build_tiny_onnx(tmp_path / "tiny.onnx")
    return path


@pytest.fixture
def make_tiny_onnx(tmp_path):
    def make(name="m.onnx", **kw):
        return build_tiny_onnx(tmp_path / name, **kw)[0]

    return make
