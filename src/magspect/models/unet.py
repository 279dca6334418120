"""U-Net decoder on a torchvision encoder, with input normalisation inside the graph.

The network takes images already scaled to [0, 1] (8-bit /255, 16-bit /65535: the manifest says
which) as ``N x C x H x W`` float32 and returns class logits ``N x num_classes x H x W``. H and W
must be multiples of 32. A full-resolution branch feeds the last decoder block so that cracks one
or two pixels wide survive the encoder's downsampling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from magspect.models._registry import ModelConfig, register_model
from magspect.models.encoders import StagedEncoder, mobilenet_v3_encoder, resnet_encoder


def conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class DecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(cin + cskip, cout)
        self.conv2 = conv_bn_relu(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.conv2(self.conv1(x))


class UNetDecoder(nn.Module):
    """Decoder over encoder features at strides (2, 4, 8, 16, 32) plus a stride-1 skip."""

    def __init__(self, encoder_channels: tuple[int, ...], decoder_channels: tuple[int, ...], full_res_ch: int):
        super().__init__()
        if len(decoder_channels) != len(encoder_channels):
            raise ValueError("one decoder width per encoder stage")
        skips = list(encoder_channels[:-1][::-1]) + [full_res_ch]  # strides 16, 8, 4, 2, 1
        cins = [encoder_channels[-1], *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            DecoderBlock(cin, cskip, cout) for cin, cskip, cout in zip(cins, skips, decoder_channels, strict=True)
        )

    def forward(self, feats: list[torch.Tensor], full_res: torch.Tensor | None) -> torch.Tensor:
        x = feats[-1]
        skips = [*feats[:-1][::-1], full_res]
        for block, skip in zip(self.blocks, skips, strict=True):
            x = block(x, skip)
        return x


class SegmentationNet(nn.Module):
    """Normalise -> encoder -> U-Net decoder -> 1x1 head. Input in [0, 1], output logits."""

    def __init__(
        self,
        encoder: StagedEncoder,
        cfg: ModelConfig,
        decoder_channels: tuple[int, ...],
        full_res_ch: int = 16,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(cfg.mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(cfg.std, dtype=torch.float32).view(1, -1, 1, 1))
        self.encoder = encoder
        self.full_res = (
            nn.Sequential(conv_bn_relu(cfg.in_chans, full_res_ch), conv_bn_relu(full_res_ch, full_res_ch))
            if full_res_ch
            else None
        )
        self.decoder = UNetDecoder(encoder.out_channels, decoder_channels, full_res_ch)
        self.head = nn.Conv2d(decoder_channels[-1], cfg.num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        feats = self.encoder(x)
        full = self.full_res(x) if self.full_res is not None else None
        return self.head(self.decoder(feats, full))


# tile 1024: a whole 1024x1024 station image runs in one pass (tiling it would cost ~2.5x)
_SMALL = ModelConfig(in_chans=1, input_size_hw=(256, 256), tile_size_px=1024, tile_overlap_px=64)
_LARGE = ModelConfig(in_chans=1, input_size_hw=(384, 384), tile_size_px=1024, tile_overlap_px=64)


@register_model("unet_mnv3s", default_cfg=_SMALL, description="MobileNetV3-small U-Net, ~1.1 M params, edge CPUs")
def unet_mnv3s(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (64, 48, 32, 24, 16), full_res_ch: int = 8):
    return SegmentationNet(mobilenet_v3_encoder("small", cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)


@register_model("unet_mnv3l", default_cfg=_SMALL, description="MobileNetV3-large U-Net, ~3.5 M params")
def unet_mnv3l(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (128, 64, 48, 32, 16), full_res_ch: int = 16):
    return SegmentationNet(mobilenet_v3_encoder("large", cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)


@register_model("unet_r34", default_cfg=_LARGE, description="ResNet-34 U-Net, ~24 M params, GPUs")
def unet_r34(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16), full_res_ch: int = 16):
    return SegmentationNet(resnet_encoder(34, cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)
