import numpy as np
import pytest

torch = pytest.importorskip("torch")

from magspect.models import create_model  # noqa: E402
from magspect.training.bn import batchnorm_layers, recalibrate_batchnorm, set_bn_momentum  # noqa: E402


def test_recalibrated_eval_matches_train_mode_on_the_calibration_image():
    torch.manual_seed(0)
    model = create_model("unet_mnv3s", in_chans=1)
    img = np.random.default_rng(0).integers(0, 255, (256, 256), dtype=np.uint8)  # deepest map 8x8
    x = torch.from_numpy(img.astype(np.float32) / 255)[None, None]
    model.eval()
    with torch.no_grad():
        stale = model(x)
        model.train()
        target = model(x)
    momenta = [m.momentum for m in batchnorm_layers(model)]
    n = recalibrate_batchnorm(model, [img, img, img], in_chans=1)
    assert n == 3 and not model.training
    assert [m.momentum for m in batchnorm_layers(model)] == momenta
    with torch.no_grad():
        fixed = model(x)
    err_before = (stale - target).abs().mean().item()
    err_after = (fixed - target).abs().mean().item()
    assert err_after < 0.25 * err_before, (err_before, err_after)  # residual: unbiased vs biased variance on 8x8 maps


def test_set_momentum_and_empty_input():
    model = create_model("unet_mnv3s", in_chans=1)
    assert set_bn_momentum(model, 0.1) == len(batchnorm_layers(model)) > 10
    assert {m.momentum for m in batchnorm_layers(model)} == {0.1}
    with pytest.raises(ValueError, match="no images"):
        recalibrate_batchnorm(model, [], in_chans=1)
