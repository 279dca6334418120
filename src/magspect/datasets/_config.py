"""SynthConfig: every knob of the generator in one validated, frozen settings object."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

SURFACES: tuple[str, ...] = ("NiCuNi", "Zn", "epoxy", "phosphate", "uncoated")
LIGHTINGS: tuple[str, ...] = ("coaxial", "dome", "darkfield", "backlight")
BIT_DEPTHS: tuple[int, ...] = (8, 16)
DEFECT_CLASS_CHOICES: tuple[str, ...] = ("crack", "chip", "coating_flaw")

#: The lighting a station uses for each view when the config leaves it to the generator.
DEFAULT_LIGHTING_WEIGHTS: dict[str, float] = {"coaxial": 0.35, "dome": 0.25, "darkfield": 0.25, "backlight": 0.15}
#: The lightings that show a surface: what a station inspecting surfaces uses for its views (with a
#: back light only for the silhouette: ``SynthConfig(backlight=True)``).
FRONT_LIGHTINGS: tuple[str, ...] = ("coaxial", "dome", "darkfield")


@dataclass(frozen=True)
class SynthConfig:
    """Settings of :func:`magspect.datasets.generate_part`.

    ``None`` means "the generator draws it" (from the part's seed), a concrete value fixes it.

    Geometry and imaging
        size_px: square image side. um_per_px: scale; None scales the nominal part to fill
        ``fill_fraction`` of the field (about 25 µm/px for a 20 mm block at 1024 px).
        views: which views to render ("top" sees the pole face, "side" the thickness).
        pose: "random" (rotation and translation jitter in a fixture, ``max_rotation_deg`` and
        ``max_shift_fraction`` of the free field), "fixed" (centred, angle 0), or a mapping
        ``{"angle_deg": a, "dx_px": x, "dy_px": y}`` applied to every view.
    Part
        dimensions_mm: force some or all dimension values (names of ``magspect.specs.parts``).
        dimension_sigma_fraction: manufacturing spread, standard deviation as a fraction of the
        tolerance. out_of_tolerance_rate: share of parts with one dimension pushed outside it.
    Look
        surface: a coating from ``SURFACES`` (None: the spec's coating). lighting: one of
        ``LIGHTINGS``, a tuple of them to draw from per view (``FRONT_LIGHTINGS``: every lighting
        that shows the surface), or None (drawn per view from all of them). bit_depth 8 or 16;
        color: BGR uint8 x3 (8 bit only).
    Defects and nuisances
        defects: False renders no defect. force_defect: a class ("crack", "chip",
        "coating_flaw") or "class/subtype" (e.g. "coating_flaw/scratch") that every part gets at
        least once. defect_rate: share of parts with defects. nuisances: dust, lint, water spots,
        fingerprints, hot spots and fixture shadows (never labelled). face_cracks_on_face: False
        draws face cracks as magsynth-v1/-v2 did, started at the outline.
    Optics and sensor
        noise: photon and read noise. blur: optical blur (sigma drawn in ``blur_sigma_px``).
        vignetting, exposure_jitter: lens fall-off and a random exposure gain.
        backlight: also render a back-lit companion image per view (for metrology).
        second_lighting: also render each view under this front light (same part, pose, defects
        and look-alikes, its own exposure), as a station with two lights per view captures it.
    """

    size_px: int = 1024
    um_per_px: float | None = None
    fill_fraction: float = 0.8
    views: tuple[Literal["top", "side"], ...] = ("top", "side")
    pose: str | Mapping[str, float] = "random"
    max_rotation_deg: float = 4.0
    max_shift_fraction: float = 0.5
    dimensions_mm: Mapping[str, float] | None = None
    dimension_sigma_fraction: float = 0.25
    out_of_tolerance_rate: float = 0.1
    surface: str | None = None
    lighting: str | tuple[str, ...] | None = None
    bit_depth: int = 8
    color: bool = False
    defects: bool = True
    force_defect: str | None = None
    defect_rate: float = 0.5
    max_defects: int = 3
    nuisances: bool = True
    noise: bool = True
    blur: bool = True
    blur_sigma_px: tuple[float, float] = (0.5, 1.1)
    vignetting: bool = True
    exposure_jitter: float = 0.15
    #: Also render each view back-lit (same camera, same pose, fixed unsaturated exposure) into
    #: ``RenderedView.backlight``: the image a metrology station measures dimensions on.
    backlight: bool = False
    #: Also render each view under a second front light (``FRONT_LIGHTINGS``) into
    #: ``RenderedView.second``: the same surface maps lit another way, exposed for that light.
    second_lighting: str | None = None
    #: Face cracks start on the face, at least 0.3 mm inside the outline, as drawn. False keeps
    #: magsynth-v1 and -v2's generator, which moved each face crack's start to 0.03 mm inside the
    #: outline (a bug: a face crack that then headed outwards stopped after a few steps, 0.05 mm
    #: long); those suites never change, so they keep it.
    face_cracks_on_face: bool = True

    def __post_init__(self) -> None:
        if not 64 <= int(self.size_px) <= 8192:
            raise ValueError(f"size_px must be 64..8192, got {self.size_px}")
        if self.um_per_px is not None and not self.um_per_px > 0:
            raise ValueError(f"um_per_px must be > 0, got {self.um_per_px}")
        if not 0.1 <= self.fill_fraction <= 0.98:
            raise ValueError(f"fill_fraction must be 0.1..0.98, got {self.fill_fraction}")
        views = tuple(self.views)
        if not views or any(v not in ("top", "side") for v in views) or len(set(views)) != len(views):
            raise ValueError(f"views must be distinct values of 'top', 'side'; got {self.views!r}")
        object.__setattr__(self, "views", views)
        if isinstance(self.pose, str) and self.pose not in ("random", "fixed"):
            raise ValueError(f"pose must be 'random', 'fixed' or a mapping, got {self.pose!r}")
        if not isinstance(self.pose, str):
            unknown = set(self.pose) - {"angle_deg", "dx_px", "dy_px"}
            if unknown:
                raise ValueError(f"pose mapping keys are angle_deg, dx_px, dy_px; unknown {sorted(unknown)}")
        if self.surface is not None and self.surface not in SURFACES:
            raise ValueError(f"surface must be one of {', '.join(SURFACES)}; got {self.surface!r}")
        if isinstance(self.lighting, (list, tuple)):
            object.__setattr__(self, "lighting", tuple(self.lighting))
            if not self.lighting or any(x not in LIGHTINGS for x in self.lighting):
                raise ValueError(f"lighting choices must be values of {', '.join(LIGHTINGS)}; got {self.lighting!r}")
        elif self.lighting is not None and self.lighting not in LIGHTINGS:
            raise ValueError(f"lighting must be one of {', '.join(LIGHTINGS)}; got {self.lighting!r}")
        if self.second_lighting is not None and self.second_lighting not in FRONT_LIGHTINGS:
            raise ValueError(f"second_lighting must be one of {', '.join(FRONT_LIGHTINGS)}; "
                             f"got {self.second_lighting!r}")
        if self.bit_depth not in BIT_DEPTHS:
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth}")
        if self.color and self.bit_depth != 8:
            raise ValueError("color images are 8-bit BGR; use bit_depth=8 with color=True")
        if self.force_defect is not None:
            klass, _, sub = self.force_defect.partition("/")
            from magspect.types import DEFECT_SUBTYPES

            if klass not in DEFECT_CLASS_CHOICES or (sub and sub not in DEFECT_SUBTYPES[klass]):
                raise ValueError(
                    f"force_defect must be a class ({', '.join(DEFECT_CLASS_CHOICES)}) or class/subtype; "
                    f"got {self.force_defect!r}"
                )
        for name in ("out_of_tolerance_rate", "defect_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {getattr(self, name)}")
        if self.max_defects < 1:
            raise ValueError("max_defects must be >= 1")

    def with_(self, **changes: object) -> SynthConfig:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @classmethod
    def clean(cls, **changes: object) -> SynthConfig:
        """No noise, blur, vignetting, exposure jitter, nuisances or defects; fixed pose: for exactness tests."""
        base = dict(
            noise=False, blur=False, vignetting=False, exposure_jitter=0.0, nuisances=False,
            defects=False, pose="fixed", out_of_tolerance_rate=0.0,
        )
        base.update(changes)
        return cls(**base)  # type: ignore[arg-type]
