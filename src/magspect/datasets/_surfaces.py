"""Materials (linear reflectances) and surface textures: grinding marks, plating mottle, grain.

A material is a specular reflectance ``ks`` (coloured for metals: the F0 of nickel, copper, iron;
0.04 white for epoxy), a diffuse albedo ``kd``, a ``sharpness`` (share of the specular lobe a
coaxial or telecentric camera catches: high on plated faces, low on ground ones) and a base
``scatter`` (light thrown sideways by roughness, what a low-angle dark-field sees).

Values from ``shared/brief/magnet-specs.md``: nickel F0 (0.660, 0.609, 0.526), copper
(0.955, 0.637, 0.538), iron-like substrate (0.56, 0.57, 0.58), black epoxy about sRGB 50.

Textures are drawn in the part's own frame (rows = local v, columns = local u, 1 px = 1 image px)
and warped into the image with the pose, so grinding marks turn with the part. Real ground faces
(``shared/data/magnetic_tile``) show dense parallel streaks of varying brightness and length, a
few brighter scratches, and large low-contrast unevenness: the texture has all three.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722])


@dataclass(frozen=True)
class Material:
    ks: tuple[float, float, float]  # specular reflectance, linear RGB
    kd: tuple[float, float, float]  # diffuse albedo, linear RGB
    sharpness: float  # share of the specular lobe returned to a coaxial camera
    scatter: float  # base dark-field scatter
    marks: float  # grinding-mark contrast
    mottle: float  # low-frequency unevenness contrast
    grain: float  # pixel-scale grain contrast


def _s(rgb: tuple[float, float, float], k: float) -> tuple[float, float, float]:
    return (rgb[0] * k, rgb[1] * k, rgb[2] * k)


NICKEL = (0.660, 0.609, 0.526)
COPPER = (0.955, 0.637, 0.538)
IRON = (0.56, 0.57, 0.58)
ZINC = (0.62, 0.66, 0.74)

MATERIALS: dict[str, Material] = {
    "NiCuNi": Material(_s(NICKEL, 0.85), _s(NICKEL, 0.10), 0.70, 0.03, 0.05, 0.06, 0.025),
    "Zn": Material(_s(ZINC, 0.80), _s(ZINC, 0.12), 0.55, 0.05, 0.06, 0.08, 0.04),
    "epoxy": Material((0.04, 0.04, 0.04), (0.030, 0.030, 0.031), 0.80, 0.02, 0.015, 0.05, 0.02),
    "phosphate": Material((0.11, 0.11, 0.12), (0.060, 0.061, 0.066), 0.30, 0.10, 0.30, 0.12, 0.06),
    "uncoated": Material(_s(IRON, 0.55), _s(IRON, 0.16), 0.35, 0.12, 0.30, 0.12, 0.06),
    # exposed by defects
    "fracture": Material(_s(IRON, 0.12), _s(IRON, 0.38), 0.05, 0.45, 0.0, 0.0, 0.22),
    "copper": Material(_s(COPPER, 0.75), _s(COPPER, 0.20), 0.30, 0.35, 0.0, 0.0, 0.1),
    "substrate": Material(_s(IRON, 0.45), _s(IRON, 0.20), 0.25, 0.30, 0.0, 0.0, 0.15),
    "rust": Material((0.03, 0.02, 0.015), (0.30, 0.12, 0.045), 0.05, 0.30, 0.0, 0.0, 0.3),
    "fixture": Material((0.03, 0.03, 0.03), (0.05, 0.05, 0.05), 0.05, 0.02, 0.0, 0.2, 0.05),
}

#: What a peel or a scratch through the top coat exposes, per coating.
UNDERLAYER: dict[str, str] = {
    "NiCuNi": "copper", "Zn": "substrate", "epoxy": "NiCuNi", "phosphate": "substrate", "uncoated": "fracture",
}


def channels(rgb: tuple[float, float, float] | np.ndarray, color: bool) -> np.ndarray:
    """Linear RGB -> the render's channels: RGB (3) or luminance (1)."""
    v = np.asarray(rgb, np.float32)
    return v if color else np.array([float(v @ LUMA)], np.float32)


def _smooth_noise(rng: np.random.Generator, hw: tuple[int, int], grid_hw: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-ish smooth noise: a coarse random grid upsampled bicubically."""
    gh, gw = max(2, grid_hw[0]), max(2, grid_hw[1])
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(g, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC)


def grinding_profile(rng: np.random.Generator, n: int, um_per_px: float) -> np.ndarray:
    """One row-profile of grinding marks across ``n`` px: fine streaks plus a few bright scratches."""
    p = rng.standard_normal(n + 16).astype(np.float32)
    sigma = max(0.45, 6.0 / um_per_px)
    p = cv2.GaussianBlur(p.reshape(1, -1), (0, 0), sigmaX=sigma).ravel()[8:-8]
    p /= p.std() + 1e-6
    p = np.exp(0.9 * p)  # ground faces: bright ridges stand out more than dark grooves
    p -= p.mean()
    p /= p.std() + 1e-6
    k = max(1, n // 20)
    idx = rng.integers(0, n, k)
    p[idx] += rng.uniform(0.8, 3.5, k).astype(np.float32)
    return p


def surface_texture(
    rng: np.random.Generator, hw: tuple[int, int], mat: Material, um_per_px: float, marks: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(albedo modulation around 1, dark-field scatter) fields of shape ``hw`` in the part frame."""
    h, w = hw
    tex = np.ones(hw, np.float32)
    scat = np.full(hw, mat.scatter, np.float32)
    if mat.mottle:
        lf = _smooth_noise(rng, hw, (h // 60 + 2, w // 200 + 2) if mat.marks > 0.1 else (h // 90 + 2, w // 90 + 2))
        tex += mat.mottle * (0.8 if mat.marks > 0.1 else 0.5) * lf
    if marks and mat.marks:
        prof = grinding_profile(rng, h, um_per_px)
        # streaks fade in and out along their length
        along = _smooth_noise(rng, hw, (h // 3 + 2, w // 40 + 2))
        streak = prof[:, None] * (0.55 + 0.45 * along)
        tex += mat.marks * 0.45 * streak
        scat += mat.scatter * 1.1 * np.abs(streak)  # ridges and grooves both throw light sideways
    if mat.grain:
        gh, gw = (h + 1) // 2, (w + 1) // 2
        g = rng.standard_normal((gh, gw)).astype(np.float32)
        g = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
        tex += mat.grain * g
    np.maximum(tex, 0.05, out=tex)
    return tex, scat
