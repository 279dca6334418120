"""torchvision backbones as U-Net encoders (``weights=None``: trained from scratch).

Contract with the decoder (as in segmentation_models.pytorch): an encoder is an ``nn.Module``
whose ``forward(x)`` returns the feature maps at strides 2, 4, 8, 16 and 32, and whose
``out_channels`` lists their channel counts in the same order.
"""

from __future__ import annotations

import torch
import torchvision
from torch import nn

STRIDES: tuple[int, ...] = (2, 4, 8, 16, 32)


def _replace_first_conv(module: nn.Module, in_chans: int) -> None:
    """Swap the first ``Conv2d`` for one taking ``in_chans`` channels (fresh weights)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            if child.in_channels != in_chans:
                setattr(
                    module,
                    name,
                    nn.Conv2d(
                        in_chans,
                        child.out_channels,
                        child.kernel_size,
                        child.stride,
                        child.padding,
                        child.dilation,
                        1,
                        child.bias is not None,
                    ),
                )
            return
        if any(isinstance(m, nn.Conv2d) for m in child.modules()):
            _replace_first_conv(child, in_chans)
            return
    raise ValueError("no Conv2d found")


class StagedEncoder(nn.Module):
    """Runs ``stages`` in order and returns each stage's output (one stage per stride)."""

    def __init__(self, stages: list[nn.Module], out_channels: list[int]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(out_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


def _split_by_stride(features: nn.Sequential, in_chans: int) -> StagedEncoder:
    """Group a torchvision ``features`` Sequential into one stage per stride (2..32)."""
    probe = torch.zeros(1, in_chans, 64, 64)
    groups: list[list[nn.Module]] = [[] for _ in STRIDES]
    channels = [0] * len(STRIDES)
    with torch.no_grad():
        x = probe
        for layer in features:
            x = layer(x)
            stride = 64 // x.shape[-1]
            idx = STRIDES.index(stride)
            groups[idx].append(layer)
            channels[idx] = x.shape[1]
    if any(not g for g in groups):
        raise ValueError("backbone does not reach every stride 2..32")
    return StagedEncoder([nn.Sequential(*g) for g in groups], channels)


def mobilenet_v3_encoder(variant: str, in_chans: int, drop_last_conv: bool = True) -> StagedEncoder:
    """MobileNetV3 ``small`` or ``large`` encoder; ``drop_last_conv`` drops the wide 1x1 head conv."""
    ctor = {"small": torchvision.models.mobilenet_v3_small, "large": torchvision.models.mobilenet_v3_large}[variant]
    features = ctor(weights=None).features
    if drop_last_conv:
        features = nn.Sequential(*list(features)[:-1])
    _replace_first_conv(features, in_chans)
    return _split_by_stride(features, in_chans)


def resnet_encoder(depth: int, in_chans: int) -> StagedEncoder:
    """ResNet-18/34/50 encoder."""
    net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    if in_chans != 3:
        net.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
    stages = [
        nn.Sequential(net.conv1, net.bn1, net.relu),
        nn.Sequential(net.maxpool, net.layer1),
        net.layer2,
        net.layer3,
        net.layer4,
    ]
    expansion = 4 if depth >= 50 else 1
    return StagedEncoder(stages, [64, 64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion])
