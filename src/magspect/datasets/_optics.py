"""Lighting, lens and sensor: surface maps -> radiance -> a quantised camera image.

The render keeps, per pixel, a specular reflectance ``ks`` and diffuse albedo ``kd`` (C channels),
a specular ``sharp``-ness (the share of the lobe a telecentric coaxial camera catches, already
multiplied by surface geometry: 0 on chamfers and rounded edges) and a dark-field ``scatter``.

==========  ======================================================================================
coaxial     bright-field: flat plated faces bright, anything that scatters (cracks, pits, chips) dark
dome        diffuse: even on curved faces, shows colour (rust, stains), low defect contrast
darkfield   low-angle ring light (< 10 deg): flat faces dark, edges, scratches and cracks glow
backlight   collimated backlight: a silhouette for metrology; only the outline (and chips) matter
==========  ======================================================================================

Part and background radiance are blended by the exact coverage *after* lighting, so the 50 %
crossing of an edge in a backlit or evenly lit image lies exactly on the true edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

#: Face radiance the exposure aims at, as a fraction of full scale.
_TARGET = {"coaxial": 0.62, "dome": 0.55, "darkfield": 0.9, "backlight": 0.7}  # backlight: +2 sigma jitter stays < 1


@dataclass
class Maps:
    """Per-pixel surface state of the part (float32; ks, kd are HxWxC)."""

    ks: np.ndarray
    kd: np.ndarray
    sharp: np.ndarray
    scatter: np.ndarray
    add: np.ndarray  # radiance added after lighting (hot spots), HxW


def part_radiance(m: Maps, lighting: str) -> np.ndarray:
    """Radiance of the part surface under ``lighting`` (HxWxC, linear, arbitrary scale)."""
    sc = m.scatter[..., None]
    if lighting == "coaxial":
        keep = (m.sharp * np.maximum(1.0 - 0.6 * np.minimum(m.scatter, 1.0 / 0.6), 0.0))[..., None]
        r = m.ks * keep + 0.3 * m.kd
    elif lighting == "dome":
        r = (0.7 * m.ks + 0.8 * m.kd) * (1.0 - 0.3 * np.minimum(np.maximum(sc, 0.0), 1.0))
    elif lighting == "darkfield":
        tint = 0.6 + 0.4 * (m.ks + m.kd) / np.maximum((m.ks + m.kd).mean(axis=-1, keepdims=True), 1e-3)
        r = 0.03 * m.kd + 0.9 * sc * tint * 0.5
    elif lighting == "backlight":
        return np.full(m.ks.shape, 0.012, np.float32)
    else:
        raise ValueError(f"unknown lighting {lighting!r}")
    return r + m.add[..., None]


def background_radiance(kd: np.ndarray, lighting: str) -> np.ndarray:
    """Radiance of the matte fixture/table (HxWxC or broadcastable)."""
    if lighting == "coaxial":
        return 0.3 * kd
    if lighting == "dome":
        return 0.8 * kd
    if lighting == "darkfield":
        return 0.03 * kd
    return np.ones_like(kd)  # backlight: the light table itself


def exposure_gain(face_ks: np.ndarray, face_kd: np.ndarray, sharp: float, scatter: float, lighting: str) -> float:
    """Gain that puts a typical face (or the backlight) at the target level."""
    # A station sets exposure for bright plated parts and opens up at most ~3x for dark ones, so black
    # epoxy and phosphate stay dark grey instead of being stretched to the same level.
    if lighting == "coaxial":
        level = max(float((face_ks * sharp * (1 - 0.6 * scatter) + 0.3 * face_kd).mean()), 0.13)
    elif lighting == "dome":
        level = max(float((0.7 * face_ks + 0.8 * face_kd).mean()), 0.15)
    elif lighting == "darkfield":
        level = 0.45  # scatter 1 -> about 0.9 * target
    else:
        level = 1.0
    return _TARGET[lighting] / level


@lru_cache(maxsize=8)
def _radius2(h: int, w: int) -> np.ndarray:
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (max(h, w) / 2)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (max(h, w) / 2)
    r2 = y[:, None] ** 2 + x[None, :] ** 2
    r2.setflags(write=False)
    return r2


def vignette(img: np.ndarray, strength: float) -> np.ndarray:
    """Multiply by a smooth radial fall-off (1 at the centre, 1 - strength at the field's corners/2)."""
    r2 = _radius2(img.shape[0], img.shape[1])
    f = 1.0 - (strength / 2.0) * r2
    return img * (f[..., None] if img.ndim == 3 else f)


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    if sigma_px <= 0:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px, borderType=cv2.BORDER_REFLECT)


def sensor(
    img: np.ndarray, rng: np.random.Generator | None, bit_depth: int, read_noise: float = 0.004,
    full_well_e: float = 6000.0,
) -> np.ndarray:
    """Photon and read noise, then clip and quantise.

    The noise is zero-mean with variance ``read_noise**2 + signal / full_well_e`` (photon shot noise
    in its Gaussian limit). Its shape is the sum of two uniform variables (triangular, unit variance):
    at these levels it looks the same as a Gaussian and is five times cheaper to draw.
    """
    if rng is not None:
        var = np.maximum(img, 0.0) * np.float32(1.0 / full_well_e) + np.float32(read_noise * read_noise)
        b = np.frombuffer(rng.bytes(2 * img.size), np.uint8)
        tri = (b[: img.size].astype(np.float32) + b[img.size :]).reshape(img.shape)
        tri -= np.float32(255.0)
        tri *= np.float32(1.0 / 104.52)  # std of the sum of two uniform bytes: 256 / sqrt(6)
        img = img + tri * np.sqrt(var, dtype=np.float32)
    top = 255.0 if bit_depth == 8 else 65535.0
    out = np.maximum(img, np.float32(0.0))
    np.minimum(out, np.float32(1.0), out=out)
    out *= np.float32(top)
    out += np.float32(0.5)
    return out.astype(np.uint8 if bit_depth == 8 else np.uint16)
