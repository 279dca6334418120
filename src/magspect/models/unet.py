"""U-Net decoder on a torchvision encoder, with input normalisation inside the graph.

The network takes images already scaled to [0, 1] (8-bit /255, 16-bit /65535: the manifest says
which) as ``N x C x H x W`` float32 and returns class logits ``N x num_classes x H x W``. H and W
must be multiples of 32. A full-resolution branch feeds the last decoder block so that cracks one
or two pixels wide survive the encoder's downsampling.
"""

from __future__ import annotations

import copy

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


class LiteDecoderBlock(nn.Module):
    """Upsample x2, concatenate the skip, 1x1 reduce, then a residual depthwise-separable 3x3.

    About a tenth of :class:`DecoderBlock`'s cost at high resolution, where a decoder spends its time.
    """

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.in_channels, self.has_skip = cin, cskip > 0
        self.reduce = conv_bn_relu(cin + cskip, cout, 1)
        self.dw = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, groups=cout, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
        )
        self.pw = conv_bn_relu(cout, cout, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self._reduce(x, skip)
        return x + self.pw(self.dw(x))

    def _reduce(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        """``reduce(cat(up(x), skip))``, computed as ``up(W_x * x) + W_s * skip``.

        The 1x1 convolution commutes with the bilinear x2 upsampling (both are linear per pixel and
        the upsampling's weights sum to one), so the half of it that reads ``x`` runs at a quarter
        of the pixels, fewer channels are upsampled, and no concatenation is written: the same
        function (checkpoints are unchanged), less time at high resolution. For export,
        :meth:`SegmentationNet.for_inference` swaps in :class:`SplitReduce` (BatchNorm folded into
        both halves, weights as plain initializers) so the graph is Conv, Resize, Conv, Add, Relu."""
        if isinstance(self.reduce, SplitReduce):
            return self.reduce(x, skip)
        if skip is None:
            return self.reduce(_up2(x))
        conv, bn, act = self.reduce
        cx, w = x.shape[1], conv.weight
        return act(bn(_up2(F.conv2d(x, w[:, :cx])) + F.conv2d(skip, w[:, cx:])))


def _up2(t: torch.Tensor) -> torch.Tensor:
    return F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)


class SplitReduce(nn.Module):
    """A lite block's conv-BN-ReLU ``reduce`` in inference form: BatchNorm folded, the 1x1 weights
    split between the upsampled input (``conv_x``, run before the upsampling) and the skip
    (``conv_s``, carrying the bias)."""

    def __init__(self, reduce: nn.Sequential, cx: int) -> None:
        super().__init__()
        conv, bn = reduce[0], reduce[1]
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            w = conv.weight * scale.view(-1, 1, 1, 1)
            self.conv_x = nn.Conv2d(cx, w.shape[0], 1, bias=False).to(w)
            self.conv_s = nn.Conv2d(w.shape[1] - cx, w.shape[0], 1).to(w)
            self.conv_x.weight.copy_(w[:, :cx])
            self.conv_s.weight.copy_(w[:, cx:])
            self.conv_s.bias.copy_(bn.bias - bn.running_mean * scale)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return F.relu(_up2(self.conv_x(x)) + self.conv_s(skip))


class UNetDecoder(nn.Module):
    """Decoder over encoder features at strides (2, 4, 8, 16, 32) plus, optionally, a stride-1 skip.

    With ``full_res_ch`` the decoder has one block per encoder stage and ends at stride 1; with
    ``full_res_ch=0`` it has one block fewer and ends at stride 2 (the head's logits are then
    upsampled x2: thin cracks are still seen, as the stride-2 stem's 3x3 kernels overlap).
    """

    def __init__(
        self,
        encoder_channels: tuple[int, ...],
        decoder_channels: tuple[int, ...],
        full_res_ch: int,
        block: type[nn.Module] = DecoderBlock,
    ):
        super().__init__()
        skips = list(encoder_channels[:-1][::-1]) + ([full_res_ch] if full_res_ch else [])  # strides 16, 8, 4, 2(, 1)
        if len(decoder_channels) != len(skips):
            raise ValueError(f"{len(skips)} decoder widths needed (one per skip), got {len(decoder_channels)}")
        cins = [encoder_channels[-1], *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            block(cin, cskip, cout) for cin, cskip, cout in zip(cins, skips, decoder_channels, strict=True)
        )
        self.out_stride = 1 if full_res_ch else 2

    def forward(self, feats: list[torch.Tensor], full_res: torch.Tensor | None) -> torch.Tensor:
        x = feats[-1]
        skips = [*feats[:-1][::-1]] + ([full_res] if full_res is not None else [])
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
        block: type[nn.Module] = DecoderBlock,
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
        self.decoder = UNetDecoder(encoder.out_channels, decoder_channels, full_res_ch, block)
        self.head = nn.Conv2d(decoder_channels[-1], cfg.num_classes, 1)
        # False in the exported form: the runtime upsamples the stride-2 logits (Manifest.output_stride)
        self.upsample_logits = True

    @property
    def output_stride(self) -> int:
        """The logits' stride against the input: 1, or the decoder's when the upsampling is left out."""
        return 1 if self.upsample_logits else self.decoder.out_stride

    def for_inference(self) -> SegmentationNet:
        """An eval-mode copy in the form exported to ONNX: lite blocks' ``reduce`` as
        :class:`SplitReduce`, and logits left at the decoder's stride (the runtime upsamples them,
        :func:`magspect.models.manifest.full_resolution_logits`); with that upsampling, the same
        function as ``self.eval()``. Not trainable further."""
        net = copy.deepcopy(self).eval()
        net.upsample_logits = False
        for block in net.decoder.blocks:
            if isinstance(block, LiteDecoderBlock) and block.has_skip and not isinstance(block.reduce, SplitReduce):
                block.reduce = SplitReduce(block.reduce, block.in_channels)
        return net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = (image - self.mean) / self.std
        feats = self.encoder(x)
        full = self.full_res(x) if self.full_res is not None else None
        logits = self.head(self.decoder(feats, full))
        if self.decoder.out_stride != 1 and self.upsample_logits:
            scale = float(self.decoder.out_stride)
            logits = F.interpolate(logits, scale_factor=scale, mode="bilinear", align_corners=False)
        return logits


# tile 1024: a whole 1024x1024 station image runs in one pass (tiling it would cost ~2.5x)
_SMALL = ModelConfig(in_chans=1, input_size_hw=(256, 256), tile_size_px=1024, tile_overlap_px=64)
_LARGE = ModelConfig(in_chans=1, input_size_hw=(384, 384), tile_size_px=1024, tile_overlap_px=64)


@register_model("unet_mnv3s", default_cfg=_SMALL, description="MobileNetV3-small U-Net, ~1.1 M params, edge CPUs")
def unet_mnv3s(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (64, 48, 32, 24, 16), full_res_ch: int = 8):
    return SegmentationNet(mobilenet_v3_encoder("small", cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)


@register_model(
    "unet_mnv3s_lite",
    default_cfg=_SMALL,
    description="MobileNetV3-small U-Net, depthwise decoder to stride 2, ~0.9 M params, line-speed CPUs",
)
def unet_mnv3s_lite(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (64, 48, 32, 16)):
    return SegmentationNet(
        mobilenet_v3_encoder("small", cfg.in_chans), cfg, tuple(decoder_channels), 0, block=LiteDecoderBlock
    )


@register_model("unet_mnv3l", default_cfg=_SMALL, description="MobileNetV3-large U-Net, ~3.5 M params")
def unet_mnv3l(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (128, 64, 48, 32, 16), full_res_ch: int = 16):
    return SegmentationNet(mobilenet_v3_encoder("large", cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)


@register_model("unet_r34", default_cfg=_LARGE, description="ResNet-34 U-Net, ~24 M params, GPUs")
def unet_r34(cfg: ModelConfig, decoder_channels: tuple[int, ...] = (256, 128, 64, 32, 16), full_res_ch: int = 16):
    return SegmentationNet(resnet_encoder(34, cfg.in_chans), cfg, tuple(decoder_channels), full_res_ch)
