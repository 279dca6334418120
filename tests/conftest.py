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


def build_verifier_onnx(path, *, segmenter_sha="0" * 64, threshold=0.5, n_features=4, spec_points=None, channels=4):
    """A look-alike verifier for the model with ``segmenter_sha``: logit = 20 * (confidence - 0.6),
    it trusts only confident candidates. ``spec_points``: spec id -> {keep_threshold, review_below};
    ``channels``: the patch layout its input declares (onnxruntime refuses patches of another)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from magspect.inspect.verifier import PATCH_PX, VERIFIER_METADATA_KEY, VerifierManifest

    w = np.zeros((n_features, 1), np.float32)
    w[-1, 0] = 20.0
    b = np.array([-12.0], np.float32)
    nodes = [helper.make_node("MatMul", ["features", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["logit"])]
    g = helper.make_graph(
        nodes, "conf_verifier",
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["N", channels, PATCH_PX, PATCH_PX]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", n_features])],
        [helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["N", 1])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 9
    e = m.metadata_props.add()
    e.key = VERIFIER_METADATA_KEY
    e.value = VerifierManifest(name="conf", keep_threshold=threshold, segmenter_sha256=segmenter_sha,
                               spec_points=spec_points or {}).to_json()
    onnx.save(m, str(path))
    return path


@pytest.fixture
def build_verifier():
    """``build_verifier(path, segmenter_sha=..., threshold=..., n_features=...)``: a tiny verifier ONNX."""
    return build_verifier_onnx


@pytest.fixture
def build_const():
    """``build_const(path, good_surface_logit=...)``: a 1x1-conv model ONNX (see build_const_onnx)."""
    return build_const_onnx
