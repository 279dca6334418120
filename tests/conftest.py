import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


import numpy as np  # noqa: E402
import pytest  # noqa: E402


def build_const_onnx(path, good_surface_logit: float = 5.0):
    """A 1x1-conv ONNX model that calls every pixel good surface: the pipeline without a trained model."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess

    w = np.zeros((5, 1, 1, 1), np.float32)
    b = np.array([0, good_surface_logit, 0, 0, 0], np.float32)
    g = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"])], "const",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5, "H", "W"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 9
    man = Manifest(model_name="const", in_channels=1, tile_size_px=256, tile_overlap_px=32,
                   preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
    e = m.metadata_props.add()
    e.key, e.value = METADATA_KEY, man.to_json(indent=None)
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="session")
def const_model(tmp_path_factory):
    return build_const_onnx(tmp_path_factory.mktemp("const-model") / "const.onnx")
