"""``generate_part``: one synthetic magnet, its views, masks and exact truth.

Randomness: one ``numpy.random.Generator`` per part (dimensions, defects) seeded with
``[seed, 1]`` and one per view seeded with ``[seed, 2, view index]`` (pose, look, nuisances,
noise), so the same seed and config give byte-identical images. Defects are placed only on the
views the config renders, so a part's truth describes what its images show. OpenCV runs
single-threaded while rendering.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import cv2
import numpy as np

from magspect.datasets import _nuisances
from magspect.datasets._config import DEFAULT_LIGHTING_WEIGHTS, SynthConfig
from magspect.datasets._defects import (
    BARE_SUBTYPES,
    CLASS_WEIGHTS,
    COATING_SUBTYPES,
    DefectGeom,
    make_chip,
    make_coating_flaw,
    make_crack,
)
from magspect.datasets._geometry import Pose, coverage_field
from magspect.datasets._optics import (
    Maps,
    background_radiance,
    blur,
    exposure_gain,
    part_radiance,
    sensor,
    vignette,
)
from magspect.datasets._paint import ViewCanvas, paint_defect
from magspect.datasets._parts import ViewGeometry, sample_dimensions, view_geometry
from magspect.datasets._surfaces import MATERIALS, channels, surface_texture
from magspect.datasets._truth import TRUTH_VERSION, bbox_of, defect_record, reasons_list, verdict
from magspect.specs import Spec, get_spec

_TARGET_LEVEL = 0.6
_VIEW_INDEX = {"top": 0, "side": 1}


@dataclass
class RenderedView:
    image: np.ndarray  # HxW uint8 | HxW uint16 | HxWx3 uint8 (BGR)
    class_mask: np.ndarray  # HxW uint8, ids of magspect.types.CLASS_NAMES
    instance_mask: np.ndarray  # HxW int32, 0 = none; ids match truth["defects"][i]["instance_id"]
    truth: dict[str, Any]
    coverage: np.ndarray | None = None  # HxW float32 silhouette coverage (exactness checks)
    backlight: np.ndarray | None = None  # HxW back-lit image, same pose (SynthConfig.backlight)
    second: np.ndarray | None = None  # the view under SynthConfig.second_lighting, same pose and surface


@dataclass
class SynthPart:
    spec_id: str
    seed: int
    views: dict[str, RenderedView]
    truth: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def single_threaded_cv2() -> Iterator[None]:
    n = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(n)


def scale_um_per_px(spec: Spec, view: str, config: SynthConfig) -> float:
    """µm/px of a view: fixed by the config, or the nominal part filling ``fill_fraction``."""
    if config.um_per_px is not None:
        return float(config.um_per_px)
    nominal = sample_dimensions(spec, np.random.default_rng(0), 0.0, 0.0)
    u0, v0, u1, v1 = view_geometry(spec.part.shape, nominal, view).outline.bbox_mm
    extent = max(u1 - u0, v1 - v0)
    return round(1000.0 * extent / (config.fill_fraction * config.size_px), 3)


def _pose(rng: np.random.Generator, geom: ViewGeometry, config: SynthConfig, mm_per_px: float) -> Pose:
    n = config.size_px
    centre = (n - 1) / 2
    if isinstance(config.pose, str) and config.pose == "fixed":
        return Pose(centre, centre, 0.0, mm_per_px)
    if not isinstance(config.pose, str):
        p = config.pose
        return Pose(centre + float(p.get("dx_px", 0.0)), centre + float(p.get("dy_px", 0.0)),
                    float(p.get("angle_deg", 0.0)), mm_per_px)
    angle = float(rng.uniform(-config.max_rotation_deg, config.max_rotation_deg))
    u0, v0, u1, v1 = geom.outline.bbox_mm
    corners = np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]])
    xy = Pose(0.0, 0.0, angle, mm_per_px).to_px(corners)
    free = np.maximum(n - (xy.max(axis=0) - xy.min(axis=0)) - 8, 0) / 2
    mid = (xy.max(axis=0) + xy.min(axis=0)) / 2
    shift = rng.uniform(-1, 1, 2) * free * config.max_shift_fraction - mid
    return Pose(centre + float(shift[0]), centre + float(shift[1]), angle, mm_per_px)


def _plan_defects(spec: Spec, rng: np.random.Generator, config: SynthConfig, geoms: dict[str, ViewGeometry],
                  scales: dict[str, float], surface: str) -> list[DefectGeom]:
    if not config.defects:
        return []
    forced = config.force_defect.partition("/") if config.force_defect else None
    has = forced is not None or rng.random() < config.defect_rate
    if not has:
        return []
    n = 1 + int(rng.choice(config.max_defects, p=_count_weights(config.max_defects)))
    views = list(geoms)
    vw = np.array([0.7 if v == "top" else 0.3 for v in views])
    out: list[DefectGeom] = []
    coating_um = float(np.mean(spec.part.coating_thickness_um or (10.0, 20.0)))
    subs = BARE_SUBTYPES if surface == "uncoated" else COATING_SUBTYPES
    tries = 0
    while len(out) < n and tries < n * 4 + 30:
        tries += 1
        if forced is not None and not any(_is_forced(o, forced) for o in out):
            klass, sub = forced[0], forced[2] or None
        else:
            klass = str(rng.choice(list(CLASS_WEIGHTS), p=list(CLASS_WEIGHTS.values())))
            sub = None
        view = views[int(rng.choice(len(views), p=vw / vw.sum()))]
        g, m = geoms[view], scales[view] / 1000
        if klass == "chip":
            d = make_chip(rng, spec, g.outline, view, g.face_zone, m)
        elif klass == "crack":
            d = make_crack(rng, spec, g.outline, view, g.face_zone, m, config.face_cracks_on_face)
        else:
            sub = sub or str(rng.choice(subs))
            d = make_coating_flaw(rng, spec, g.outline, view, g.face_zone, m, sub, coating_um)
        if d is None or (sub is not None and d.subtype != sub):
            continue
        if any(o.view == d.view and math.dist(o.center_mm, d.center_mm) < 0.5 * (o.length_mm + d.length_mm) + 0.2
               for o in out):
            continue
        out.append(d)
    return out


def _is_forced(d: DefectGeom, forced: tuple[str, str, str]) -> bool:
    return d.class_name == forced[0] and (not forced[2] or d.subtype == forced[2])


def _count_weights(k: int) -> np.ndarray:
    w = 0.5 ** np.arange(k)
    return w / w.sum()


class _Draw(NamedTuple):
    """What a part's seed draws before anything is rendered."""

    dims: dict[str, float]
    surface: str
    geoms: dict[str, ViewGeometry]
    scales: dict[str, float]
    defects: list[DefectGeom]


def _draw(spec: Spec, seed: int, config: SynthConfig) -> _Draw:
    rng = np.random.default_rng([seed, 1])
    dims = sample_dimensions(spec, rng, config.dimension_sigma_fraction, config.out_of_tolerance_rate,
                             config.dimensions_mm)
    surface = config.surface or (spec.part.coating if spec.part.coating in MATERIALS else "uncoated")
    geoms = {v: view_geometry(spec.part.shape, dims, v) for v in config.views}
    scales = {v: scale_um_per_px(spec, v, config) for v in config.views}
    return _Draw(dims, surface, geoms, scales, _plan_defects(spec, rng, config, geoms, scales, surface))


def plan_defects(spec: str | Spec, seed: int, config: SynthConfig | None = None) -> list[DefectGeom]:
    """The defects :func:`generate_part` draws for this part (geometry in mm, per view), without
    rendering anything: milliseconds instead of the images' second. Their ``length_mm`` etc. are the
    drawn geometry; the truth records of a rendered part add pixel boxes."""
    config = config or SynthConfig()
    return _draw(get_spec(spec) if isinstance(spec, str) else spec, int(seed), config).defects


def generate_part(spec: str | Spec, seed: int, config: SynthConfig | None = None) -> SynthPart:
    """Generate one part: its true dimensions, defects and a rendered image per view."""
    config = config or SynthConfig()
    spec = get_spec(spec) if isinstance(spec, str) else spec
    seed = int(seed)
    dims, surface, geoms, scales, defects = _draw(spec, seed, config)
    part_id = f"{spec.id}-s{seed}"
    views: dict[str, RenderedView] = {}
    all_defects: list[dict[str, Any]] = []
    with single_threaded_cv2():
        for view in config.views:
            vrng = np.random.default_rng([seed, 2, _VIEW_INDEX[view]])
            rv = _render_view(spec, view, geoms[view], scales[view], dims, surface,
                              [d for d in defects if d.view == view], vrng, config)
            rv.truth.update(part_id=part_id, spec_id=spec.id, spec_version=spec.version, seed=seed)
            views[view] = rv
            all_defects += rv.truth["defects"]
    ok, res = verdict(spec, dims, all_defects)
    for rv in views.values():
        rv.truth["conforming"] = ok
        rv.truth["part_defects"] = len(all_defects)
    truth = {
        "truth_version": TRUTH_VERSION, "part_id": part_id, "spec_id": spec.id, "spec_version": spec.version,
        "seed": seed, "shape": spec.part.shape, "surface": surface, "dimensions_mm": dims,
        "defects": all_defects, "conforming": ok, "verdict": str(res.verdict), "reasons": reasons_list(res),
        "views": list(config.views),
    }
    return SynthPart(spec.id, seed, views, truth)


def _render_view(spec: Spec, view: str, geom: ViewGeometry, um_per_px: float, dims: dict[str, float],
                 surface: str, defects: list[DefectGeom], rng: np.random.Generator,
                 config: SynthConfig) -> RenderedView:
    n = config.size_px
    hw = (n, n)
    m = um_per_px / 1000.0
    pose = _pose(rng, geom, config, m)
    if isinstance(config.lighting, str):
        lighting = config.lighting
    elif config.lighting is None:  # (exactly this draw: magsynth-v1's images depend on it)
        lighting = str(rng.choice(list(DEFAULT_LIGHTING_WEIGHTS), p=list(DEFAULT_LIGHTING_WEIGHTS.values())))
    else:  # drawn from the given choices, with their default weights
        choices = list(config.lighting)
        weights = np.array([DEFAULT_LIGHTING_WEIGHTS[c] for c in choices])
        lighting = str(rng.choice(choices, p=weights / weights.sum()))
    alpha_ideal, sd = coverage_field(geom.outline, pose, hw, band_px=4.0)
    mat = MATERIALS[surface]
    C = 3 if config.color else 1
    maps = _surface_maps(rng, geom, pose, hw, mat, um_per_px, sd, config.color)
    cv = ViewCanvas(pose, hw, maps, alpha_ideal, alpha_ideal.copy(), (alpha_ideal >= 0.5).astype(np.uint8),
                    np.zeros(hw, np.int32), surface, config.color)
    records = []
    for i, d in enumerate(defects, start=1):
        npx, roi = paint_defect(cv, d, i)
        if npx > 0 and roi is not None:
            records.append(defect_record(d, i, bbox_of(cv.instance_mask, i, roi)))
        elif roi is not None:
            cv.instance_mask[cv.instance_mask == i] = 0
    gain = exposure_gain(channels(mat.ks, config.color), channels(mat.kd, config.color), mat.sharpness,
                         mat.scatter, lighting)
    # background: a matte fixture with slow unevenness, darker than bright parts, lighter than dark ones
    dark_part = surface in ("epoxy", "phosphate")
    bgk = _background_kd(rng, lighting, dark_part, gain)
    lf = cv2.resize(rng.standard_normal((6, 6)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    bg_kd = (np.ones(C, np.float32) * bgk)[None, None, :] * (1 + 0.06 * lf)[..., None]
    face_level = _TARGET_LEVEL / gain
    nuisances: list[dict] = []
    nuis = _nuisances.apply(cv, rng, lighting, um_per_px, face_level, nuisances) if config.nuisances else None
    r_part = part_radiance(maps, lighting)
    r_bg = background_radiance(bg_kd, lighting) if lighting != "backlight" else np.ones_like(bg_kd)
    if nuis is not None:
        r_bg = r_bg * nuis[..., None]
    a = cv.alpha[..., None]
    img = a * r_part + (1 - a) * r_bg
    if config.exposure_jitter:
        gain *= float(math.exp(rng.normal(0, config.exposure_jitter)))
    img *= np.float32(gain)
    if config.vignetting:
        vig = float(rng.uniform(0.1, 0.3))
        img = vignette(img, vig)
    sigma = float(rng.uniform(*config.blur_sigma_px)) if config.blur else 0.0
    img = blur(img[..., 0] if C == 1 else img, sigma)
    out = sensor(img, rng if config.noise else None, config.bit_depth)
    if C == 3:
        out = np.ascontiguousarray(out[..., ::-1])  # RGB -> BGR for OpenCV
    truth = {
        "view": view, "um_per_px": um_per_px, "image_hw": [n, n],
        "pose": {"cx_px": pose.cx_px, "cy_px": pose.cy_px, "angle_deg": pose.angle_deg, "origin": geom.origin},
        "dimensions_mm": dims, "defects": records, "surface": surface, "lighting": lighting,
        "bit_depth": config.bit_depth, "color": "bgr" if config.color else "gray", "blur_sigma_px": sigma,
        "shape": spec.part.shape, "nuisances": nuisances,
    }
    if geom.arc_axis_mm is not None:
        ax = pose.to_px(np.array(geom.arc_axis_mm))
        truth["pose"]["arc_axis_xy_px"] = [float(ax[0]), float(ax[1])]
    # drawn after the front-lit image is complete, so turning it on leaves that image's bytes unchanged
    back = _backlight_image(cv.alpha, rng, sigma, config) if config.backlight else None
    second = None
    if config.second_lighting is not None:  # drawn last: the other images' bytes stay as they were
        light2 = config.second_lighting
        gain2 = exposure_gain(channels(mat.ks, config.color), channels(mat.kd, config.color), mat.sharpness,
                              mat.scatter, light2)
        if light2 == "darkfield":  # a hot spot is the coaxial or dome source's reflection: not seen here
            maps.add[:] = 0
        # the fixture as the suite shows it under this light (its level drawn for this light, its
        # unevenness the same): a station's fixture is chosen to stand apart from the part under each
        bg2 = bg_kd * np.float32(_background_kd(rng, light2, dark_part, gain2) / bgk)
        img2 = a * part_radiance(maps, light2) + (1 - a) * background_radiance(bg2, light2) * (
            1.0 if nuis is None else nuis[..., None])
        if config.exposure_jitter:
            gain2 *= float(math.exp(rng.normal(0, config.exposure_jitter)))
        img2 *= np.float32(gain2)
        if config.vignetting:
            img2 = vignette(img2, vig)  # the same lens
        img2 = blur(img2[..., 0] if C == 1 else img2, sigma)
        second = sensor(img2, rng if config.noise else None, config.bit_depth)
        if C == 3:
            second = np.ascontiguousarray(second[..., ::-1])
        truth["second_lighting"] = light2
    return RenderedView(out, cv.class_mask, cv.instance_mask, truth, cv.alpha, back, second)


def _background_kd(rng: np.random.Generator, lighting: str, dark_part: bool, gain: float) -> float:
    """The matte fixture's albedo that puts it at a level drawn for ``lighting`` (darker than bright
    parts, lighter than dark ones) after the exposure ``gain``; 1 under a back-light (the light table)."""
    if lighting == "backlight":
        return 1.0
    level = {"coaxial": (0.3, 0.55) if dark_part else (0.04, 0.18), "dome": (0.3, 0.6) if dark_part else (0.05, 0.2),
             "darkfield": (0.01, 0.04)}[lighting]
    unit = float(background_radiance(np.ones(1, np.float32), lighting)[0])
    return float(rng.uniform(*level)) / (gain * unit)


def _backlight_image(alpha: np.ndarray, rng: np.random.Generator, blur_sigma_px: float,
                     config: SynthConfig) -> np.ndarray:
    """The silhouette under a collimated back-light: an opaque part on an even, unsaturated field.

    Fixed exposure (background at about 75 % of full scale): a clipped back-light hides where each
    edge really ends. Grayscale, the metrology camera's bit depth; same blur as the front-lit view.
    """
    n = alpha.shape[0]
    lf = cv2.resize(rng.standard_normal((5, 5)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    field = np.float32(0.75) * (1 + np.float32(0.02) * lf)
    img = (1 - alpha) * field + alpha * np.float32(0.03)
    if config.vignetting:
        img = vignette(img, float(rng.uniform(0.05, 0.15)))
    img = blur(img, blur_sigma_px)
    return sensor(img, rng if config.noise else None, config.bit_depth)


def _surface_maps(rng: np.random.Generator, geom: ViewGeometry, pose: Pose, hw: tuple[int, int], mat: Any,
                  um_per_px: float, sd: np.ndarray, color: bool) -> Maps:
    """Texture the part in its own frame, warp it into the image, shade edges and curvature."""
    m = pose.mm_per_px
    u0, v0, u1, v1 = geom.outline.bbox_mm
    pad = 6
    wc, hc = int(math.ceil((u1 - u0) / m)) + 2 * pad, int(math.ceil((v1 - v0) / m)) + 2 * pad
    tex, scat = surface_texture(rng, (hc, wc), mat, um_per_px)
    uc0, vc0 = u0 - pad * m, v0 - pad * m
    g = np.ones((hc, wc), np.float32)
    if geom.shading == "cylinder":
        u = uc0 + np.arange(wc) * m
        ang = np.arcsin(np.clip(u / geom.cylinder_radius_mm, -1, 1))
        g *= np.exp(-(ang / 0.35) ** 2).astype(np.float32)[None, :]
    if geom.chamfer_strip_mm > 0:
        u = uc0 + np.arange(wc) * m
        strip = (np.abs(u) > (u1 - u0) / 2 - geom.chamfer_strip_mm).astype(np.float32)
        g *= (1 - 0.85 * strip)[None, :]
        scat = scat + 0.1 * strip[None, :]
    flat = geom.shading == "flat" and geom.chamfer_strip_mm <= 0
    stack = np.dstack([tex, scat] if flat else [tex, scat, g])
    a = math.radians(pose.angle_deg)
    c, s = math.cos(a), math.sin(a)
    M = np.array([[c, -s, pose.cx_px + (c * uc0 - s * vc0) / m], [s, c, pose.cy_px + (s * uc0 + c * vc0) / m]])
    warped = cv2.warpAffine(stack, M, (hw[1], hw[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    tex_i, scat_i = warped[..., 0], warped[..., 1]
    g_i = np.float32(1.0) if flat else warped[..., 2]
    r_edge = float(rng.uniform(25.0, 60.0)) / um_per_px
    e = np.minimum(np.maximum(sd * np.float32(-1.0 / r_edge), np.float32(0.0)), np.float32(1.0))
    ks = channels(mat.ks, color)[None, None, :] * tex_i[..., None]
    kd = channels(mat.kd, color)[None, None, :] * tex_i[..., None]
    sharp = mat.sharpness * g_i * e
    scatter = scat_i + 0.5 * (1 - e)
    return Maps(ks, kd, sharp, scatter, np.zeros(hw, np.float32))
