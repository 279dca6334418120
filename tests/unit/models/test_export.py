"""ONNX export of a tiny model: one file, opset 18, dynamic batch and spatial size, parity, manifest,
INT8. The export (about 15 s) runs once per module."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from magspect.models.manifest import Manifest, manifest_path_for
from magspect.training.export import ParityError, check_parity, export_checkpoint, ort_session
from magspect.training.quantize import compare_int8, quantize_int8
from magspect.training.toy import toy_checkpoint, toy_views

torch.set_num_threads(1)


def _checkpoint(name: str = "unet_mnv3s") -> dict:
    return toy_checkpoint(name)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    ckpt = _checkpoint()
    out = tmp_path_factory.mktemp("export") / "tiny.onnx"
    x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
    path, manifest, parity = export_checkpoint(ckpt, out, [x])
    return ckpt, path, manifest, parity


def test_single_file_opset_18_with_named_io(exported):
    _, path, _, _ = exported
    assert not list(path.parent.glob("*.data"))
    proto = onnx.load(str(path))
    assert {o.domain: o.version for o in proto.opset_import}.get("", 0) == 18
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # N, H, W symbolic; C fixed


def test_parity_recorded_and_within_limits(exported):
    _, _, manifest, parity = exported
    assert parity.max_abs_diff <= 1e-4 and parity.argmax_agreement >= 0.9999
    assert manifest.parity["ort_vs_torch_max_abs_logit_diff"] == parity.max_abs_diff
    # the float32 PyTorch comparison is recorded too (informational: its own rounding is in it)
    assert manifest.parity["ort_vs_torch_fp32_max_abs_logit_diff"] == parity.fp32_max_abs_diff <= 1e-4


@pytest.mark.parametrize("shape", [(1, 1, 32, 32), (3, 1, 64, 160), (2, 1, 224, 96), (1, 1, 256, 256)])
def test_dynamic_batch_and_spatial_sizes_match_pytorch(exported, shape):
    ckpt, path, _, _ = exported
    from magspect.training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    x = np.random.default_rng(2).random(shape, dtype=np.float32)
    parity = check_parity(model, path, [x])
    assert parity.max_abs_diff <= 1e-4


def test_manifest_embedded_and_beside(exported):
    _, path, manifest, _ = exported
    assert Manifest.from_onnx(path) == manifest
    assert Manifest.from_file(manifest_path_for(path)) == manifest
    assert manifest.model_name == "unet_mnv3s" and manifest.in_channels == 1
    assert manifest.preprocess.bit_depth == 8 and manifest.um_per_px == 25.0
    assert manifest.validation_metrics == {"miou_defects": 0.25}  # NaN dropped
    assert manifest.float_model_sha256 and len(manifest.float_model_sha256) == 64
    assert manifest.git_commit == "0" * 40


def test_parity_check_fails_loudly_on_a_different_model(exported):
    ckpt, path, _, _ = exported
    from magspect.training.checkpoint import model_from_checkpoint

    model = model_from_checkpoint(ckpt)
    with torch.no_grad():
        model.head.bias.add_(0.01)
    x = np.random.default_rng(3).random((1, 1, 64, 64), dtype=np.float32)
    with pytest.raises(ParityError, match="parity check FAILED"):
        check_parity(model, path, [x])


def test_int8_quantisation_of_tiny_model(exported, tmp_path):
    _, path, _, _ = exported
    views = toy_views(6, size_px=64, seed=5)
    inputs = [(im.astype(np.float32) / 255.0)[None, None] for im, _ in views]
    out = quantize_int8(path, tmp_path / "tiny-int8.onnx", inputs[:4])
    assert out.stat().st_size < path.stat().st_size / 2
    proto = onnx.load(str(out))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    rep = compare_int8(path, out, [(x, m) for x, (_, m) in zip(inputs[4:], views[4:], strict=True)])
    assert rep.argmax_agreement > 0.9
    y = ort_session(out).run(["logits"], {"image": np.zeros((2, 1, 96, 64), np.float32)})[0]
    assert y.shape == (2, 5, 96, 64)


def test_int8_keeps_first_last_depthwise_and_decoder_convolutions_in_fp32(exported):
    from magspect.training.quantize import decoder_convs, sensitive_nodes

    _, path, _, _ = exported
    proto = onnx.load(str(path))
    names = set(sensitive_nodes(path))
    head = next(n for n in proto.graph.node if "logits" in n.output)
    first = [n for n in proto.graph.node if n.op_type == "Conv"][0]
    assert head.name in names and first.name in names
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    depthwise = {n.name for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)}
    assert depthwise and depthwise <= names  # depthwise convolutions stay in FP32 (accuracy)
    decoder = set(decoder_convs(proto.graph))
    assert decoder and head.name in decoder and decoder <= names  # the decoder stays in FP32
    encoder_dense = [n.name for n in convs if n.name not in depthwise and n.name not in decoder]
    assert encoder_dense and sum(n in names for n in encoder_dense) <= 2  # the ones reading the image
    old_recipe = set(sensitive_nodes(path, decoder=False))  # the seventh session's: the decoder quantised
    dense = [n.name for n in convs if n.name not in depthwise]
    assert sum(n in old_recipe for n in dense) <= 3 and head.name in old_recipe


def test_lite_model_exports_its_split_reduce_and_keeps_it_fp32_in_int8(tmp_path):
    """The lite decoder exports without a Concat (each block's 1x1 reduce split around the
    upsampling, BatchNorm folded), passes parity against the trainable model, and INT8 keeps the
    split halves in FP32."""
    from magspect.inspect.backend import Segmenter
    from magspect.training.quantize import sensitive_nodes, split_reduce_convs

    x = np.random.default_rng(2).random((1, 1, 64, 96), dtype=np.float32)
    path, manifest, parity = export_checkpoint(_checkpoint("unet_mnv3s_lite"), tmp_path / "lite.onnx", [x])
    assert parity.max_abs_diff <= 1e-4  # checked after the runtime's upsampling to full size
    graph = onnx.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    assert "Concat" not in ops and "BatchNormalization" not in ops
    # the logits leave the graph at stride 2 (no full-resolution Resize); the runtime upsamples them
    assert manifest.output_stride == 2 and ops.count("Resize") == 4
    assert ort_session(path).run(["logits"], {"image": x})[0].shape == (1, 5, 32, 48)
    (lg,) = Segmenter(path, warmup=False).logits([np.zeros((64, 96), np.uint8)])
    assert lg.shape == (5, 64, 96)
    split = split_reduce_convs(graph)
    assert len(split) == 2 * 4 == len(set(split))  # two halves per decoder block with a skip
    assert set(split) <= set(sensitive_nodes(path))
    assert all(next(n for n in graph.node if n.name == s).op_type == "Conv" for s in split)


def test_a_model_that_fails_parity_is_not_left_behind(tmp_path, monkeypatch):
    import magspect.training.export as ex

    def fail(*_a, **_k):
        raise ParityError("ONNX parity check FAILED (forced)")

    monkeypatch.setattr(ex, "check_parity", fail)
    out = tmp_path / "tiny.onnx"
    x = np.random.default_rng(1).random((1, 1, 64, 64), dtype=np.float32)
    with pytest.raises(ParityError, match="FAILED"):
        export_checkpoint(_checkpoint(), out, [x])
    assert not out.exists() and not manifest_path_for(out).exists()


def test_calibration_images_of_different_sizes_are_tiled_to_one(exported, tmp_path):
    """Real validation images differ in size; onnxruntime's calibration cannot stack them. They are
    cut into tiles of the smallest side, covering every pixel, and the quantisation goes through."""
    from magspect.training.quantize import same_size_inputs

    rng = np.random.default_rng(3)
    a, b = rng.random((1, 1, 96, 160), dtype=np.float32), rng.random((1, 1, 64, 70), dtype=np.float32)
    tiles = same_size_inputs([a, b])
    assert {t.shape for t in tiles} == {(1, 1, 64, 64)}
    assert len(tiles) == 2 * 3 + 1 * 2  # 96x160 -> 2 rows x 3 columns; 64x70 -> 1 x 2
    covered = np.zeros((96, 160), bool)
    for t in tiles[:6]:  # each of a's tiles is a window of a
        (y, x) = next((y, x) for y in range(33) for x in range(97) if np.array_equal(a[..., y:y + 64, x:x + 64], t))
        covered[y:y + 64, x:x + 64] = True
    assert covered.all()
    same = [a, a.copy()]
    assert same_size_inputs(same) is same  # alike already: untouched
    with pytest.raises(ValueError, match="at least 32 px"):
        same_size_inputs([a, rng.random((1, 1, 20, 40), dtype=np.float32)])
    _, path, _, _ = exported
    out = quantize_int8(path, tmp_path / "mixed-int8.onnx", [a, b])
    assert any(n.op_type == "QuantizeLinear" for n in onnx.load(str(out)).graph.node)
