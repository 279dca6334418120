"""Every registered model: tiny forward/backward, shapes, channels; the registry; torch-free imports."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

from magspect.models import ModelConfig, create_model, default_cfg, list_models, register_model

torch.set_num_threads(1)


def test_registry_lists_small_and_large_variants():
    names = list_models()
    assert {"unet_mnv3s", "unet_r34"} <= set(names)
    small = sum(p.numel() for p in create_model("unet_mnv3s").parameters())
    assert 0.8e6 < small < 1.5e6  # the edge-CPU model stays around a million parameters
    assert default_cfg("unet_mnv3s").input_multiple == 32
    lite = create_model("unet_mnv3s_lite")
    assert 0.5e6 < sum(p.numel() for p in lite.parameters()) < 1.5e6


def test_lite_decoder_ends_at_stride_2_and_still_sees_a_one_pixel_line():
    """The lite model's head runs at stride 2 and its logits are upsampled: a one-pixel line in the
    input must still change the output at the line's pixels (the stride-2 stem's 3x3 kernels overlap)."""
    torch.manual_seed(0)
    model = create_model("unet_mnv3s_lite").eval()
    assert model.decoder.out_stride == 2 and model.full_res is None
    x = torch.full((1, 1, 64, 64), 0.5)
    line = x.clone()
    line[..., 31, :] = 1.0
    with torch.no_grad():
        d = (model(line) - model(x)).abs().sum(1)[0]
    assert float(d[31].mean()) > 10 * float(d[:8].mean()) + 1e-6


def _concat_reduce(block, x, skip):
    """The lite block's reduce the direct way: upsample, concatenate, conv-BN-ReLU."""
    up = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return block.reduce(torch.cat([up, skip], dim=1))


@pytest.mark.parametrize("training", [True, False])
def test_lite_block_split_reduce_is_the_concatenating_one(training):
    """``LiteDecoderBlock`` computes ``reduce(cat(up(x), skip))`` as ``up(W_x x) + W_s skip`` (BatchNorm
    folded in eval mode): the same values and, in training, the same gradients and BN statistics."""
    from magspect.models.unet import LiteDecoderBlock

    torch.manual_seed(3)
    block = LiteDecoderBlock(24, 16, 32).double()
    bn = block.reduce[1]
    with torch.no_grad():  # BN far from identity, so a wrong fold shows
        bn.running_mean.uniform_(-2, 2)
        bn.running_var.uniform_(0.2, 3)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    ref = copy.deepcopy(block)
    block.train(training), ref.train(training)
    x = torch.randn(2, 24, 5, 7, dtype=torch.float64, requires_grad=True)
    skip = torch.randn(2, 16, 10, 14, dtype=torch.float64)
    got, want = block._reduce(x, skip), _concat_reduce(ref, x, skip)
    assert got.shape == (2, 32, 10, 14)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    if training:
        gx = torch.autograd.grad(got.square().sum(), [x, block.reduce[0].weight])
        gr = torch.autograd.grad(want.square().sum(), [x, ref.reduce[0].weight])
        for a, b in zip(gx, gr, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(bn.running_mean, ref.reduce[1].running_mean)


def test_lite_model_inference_form_is_the_same_function():
    """``for_inference`` (what ``export_onnx`` exports) swaps each lite block's reduce for
    ``SplitReduce``, folded BatchNorm and all, and computes what the trainable model computes."""
    from magspect.models.unet import SplitReduce

    torch.manual_seed(5)
    model = create_model("unet_mnv3s_lite").double()
    model.train()
    with torch.no_grad():  # a few training passes so every BatchNorm has non-trivial statistics
        for _ in range(3):
            model(torch.rand(2, 1, 64, 96, dtype=torch.float64))
    model.eval()
    fast = model.for_inference()
    assert sum(isinstance(m, SplitReduce) for m in fast.modules()) == len(model.decoder.blocks)
    assert not any(isinstance(m, SplitReduce) for m in model.modules())  # a copy: the original trains on
    assert fast.output_stride == 2 and model.output_stride == 1
    x = torch.rand(1, 1, 96, 64, dtype=torch.float64)
    with torch.no_grad():
        half = fast(x)
        assert half.shape[-2:] == (48, 32)
        full = torch.nn.functional.interpolate(half, scale_factor=2.0, mode="bilinear", align_corners=False)
        torch.testing.assert_close(full, model(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("hw", [(3, 5), (44, 17)])
def test_full_resolution_logits_is_pytorch_bilinear(hw):
    """The runtime's upsampling of a stride-2 export's logits (OpenCV) is the bilinear x2 the
    network's trainable form ends with (PyTorch, half-pixel centres, clamped borders)."""
    from magspect.models.manifest import full_resolution_logits

    y = np.random.default_rng(4).normal(size=(2, 5, *hw)).astype(np.float32) * 10
    want = torch.nn.functional.interpolate(torch.from_numpy(y), scale_factor=2.0, mode="bilinear",
                                           align_corners=False).numpy()
    got = full_resolution_logits(y, 2)
    assert got.shape == (2, 5, 2 * hw[0], 2 * hw[1]) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert full_resolution_logits(y, 1) is y


def test_unknown_model_and_duplicate_registration_fail():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("no_such_net")
    register_model("dup_test_model", default_cfg=ModelConfig())(lambda cfg: None)
    with pytest.raises(ValueError, match="already registered"):
        register_model("dup_test_model")(lambda cfg: None)


@pytest.mark.parametrize("name", ["unet_mnv3s", "unet_mnv3s_lite", "unet_mnv3l", "unet_r34"])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_forward_backward_tiny(name, in_chans):
    torch.manual_seed(0)
    model = create_model(name, in_chans=in_chans)
    assert model.cfg.in_chans == in_chans and len(model.cfg.mean) == in_chans
    x = torch.rand(2, in_chans, 64, 96)
    y = model(x)
    assert y.shape == (2, 5, 64, 96)
    y.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)


def test_normalisation_is_inside_the_model():
    model = create_model("unet_mnv3s").eval()
    assert torch.allclose(model.mean, torch.tensor([0.5]).view(1, 1, 1, 1))
    # the network must see (x - mean) / std: shifting mean changes the output
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        a = model(x)
        model.mean.fill_(0.0)
        b = model(x)
    assert not torch.allclose(a, b)


def test_models_package_and_manifest_do_not_import_torch():
    code = (
        "import sys; import magspect.models; from magspect.models.manifest import Manifest; "
        "from magspect.models import DEFAULT_MODEL_PATH; "
        "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
