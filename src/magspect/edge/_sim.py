"""A simulated line: the synthetic generator as a camera, with known truth per part.

Parts arrive at ``rate_hz`` (one trigger every ``1/rate_hz`` s on the station clock), each with its
top and side views, the same views back-lit for metrology, a serial number and the generator's
truth. Rendering a 1024 px part takes about a second on one core, far slower than a line, so
``prerender`` renders that many distinct parts up front and the line cycles through them (each
arrival still gets its own serial); ``prerender=0`` renders every part on demand.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from magspect.edge._camera import PartCapture, SourceExhausted


@dataclass(frozen=True)
class _Rendered:
    views: dict[str, np.ndarray]
    backlights: dict[str, np.ndarray]
    um_per_px: dict[str, float]
    masks: dict[str, np.ndarray]
    truth: dict[str, Any]


def image_digest(img: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(img).data, digest_size=16).hexdigest()


class TruthSegmenter:
    """A stand-in model that returns the generator's truth masks for the images it was shown.

    For demonstrations and tests before a trained model exists: the simulated line registers the
    masks of every image it emits; an image it never emitted gets "all good surface" (so an unknown
    image never invents a defect, and the metrology still judges it).
    """

    def __init__(self) -> None:
        from magspect.inspect.backend import Segmentation
        from magspect.models.manifest import Manifest, Preprocess

        self._segmentation = Segmentation
        self.manifest = Manifest(
            model_name="truth", in_channels=1,
            preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)),
        )
        self.name, self.sha256, self.provider = "truth", "0" * 64, "generator-truth"
        self._masks: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def register(self, image: np.ndarray, mask: np.ndarray) -> None:
        with self._lock:
            self._masks[image_digest(image)] = mask

    def predict(self, images, batch_size: int = 8, rois=None):  # noqa: ANN001, ANN201 - rois: a hint, not needed
        out = []
        for im in images:
            with self._lock:
                mask = self._masks.get(image_digest(im))
            if mask is None:
                mask = np.ones(im.shape[:2], np.uint8)
            out.append(self._segmentation(mask, np.ones(mask.shape, np.float32)))
        return out


class SimulatedLine:
    """Generated parts arriving at a fixed rate. Implements :class:`~magspect.edge.Camera`.

    ``n_parts``: stop after that many (``None``: run until stopped). ``defect_rate`` and
    ``out_of_tolerance_rate``: shares of parts with defects / a dimension out of tolerance (the
    generator's knobs). ``segmenter``: a :class:`TruthSegmenter` to register each part's truth
    masks with (the station does this when its model is ``truth``).
    """

    def __init__(
        self,
        spec: str,
        *,
        rate_hz: float = 5.0,
        n_parts: int | None = None,
        defect_rate: float = 0.3,
        out_of_tolerance_rate: float = 0.05,
        size_px: int = 1024,
        seed: int = 0,
        prerender: int = 0,
        backlight: bool = True,
        lanes: int = 1,
        serial_prefix: str = "SIM",
        segmenter: TruthSegmenter | None = None,
        rendered: tuple[_Rendered, ...] | None = None,
        lighting: str | None = None,
    ) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        if lanes < 1:
            raise ValueError("lanes must be >= 1")
        from magspect.datasets import FRONT_LIGHTINGS, SynthConfig

        if lighting is not None and lighting not in FRONT_LIGHTINGS:
            raise ValueError(f"lighting must be a front light, one of {', '.join(FRONT_LIGHTINGS)}; got {lighting!r}")

        self.name = f"sim:{spec}@{rate_hz:g}Hz"
        self.spec = spec
        self.rate_hz = float(rate_hz)
        self.n_parts = n_parts
        self.seed = seed
        self.prerender = prerender
        self.backlight = backlight
        self.lanes = lanes
        self.serial_prefix = serial_prefix
        self.segmenter = segmenter
        # a station's lighting: front-lit views (the surface shows; one light, or drawn per view among
        # them), a back-lit companion per view
        self.config = SynthConfig(
            size_px=size_px, defect_rate=defect_rate, out_of_tolerance_rate=out_of_tolerance_rate,
            lighting=FRONT_LIGHTINGS if lighting is None else (lighting,), backlight=backlight,
        )
        self._given = tuple(rendered) if rendered else None
        self._pool: list[_Rendered] = []
        self._i = 0
        self._t0: float | None = None

    def _render(self, seed: int) -> _Rendered:
        from magspect.datasets import generate_part

        part = generate_part(self.spec, seed, self.config)
        backlights = {v: rv.backlight for v, rv in part.views.items()} if self.backlight else {}
        return _Rendered(
            views={v: rv.image for v, rv in part.views.items()},
            backlights=backlights,
            um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()},
            masks={v: rv.class_mask for v, rv in part.views.items()},
            truth={**part.truth, "lighting": {v: rv.truth["lighting"] for v, rv in part.views.items()}},
        )

    @property
    def rendered(self) -> tuple[_Rendered, ...]:
        """The parts rendered up front (after ``open``): pass as ``rendered=`` to another line to reuse them."""
        return tuple(self._pool)

    def open(self) -> None:
        self._pool = list(self._given) if self._given else [self._render(self.seed + k) for k in range(self.prerender)]
        self._i = 0
        self._t0 = None

    def grab(self, timeout_s: float) -> PartCapture | None:
        if self.n_parts is not None and self._i >= self.n_parts:
            raise SourceExhausted(self.name)
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        t_arrival = self._t0 + self._i / self.rate_hz
        if t_arrival - now > timeout_s:
            time.sleep(max(0.0, timeout_s))
            return None
        if t_arrival > now:
            time.sleep(t_arrival - now)
        i = self._i
        self._i += 1
        r = self._pool[i % len(self._pool)] if self._pool else self._render(self.seed + i)
        if self.segmenter is not None:
            for v, img in r.views.items():
                self.segmenter.register(img, r.masks[v])
        return PartCapture(
            serial=f"{self.serial_prefix}-{i + 1:06d}",
            views=dict(r.views),
            um_per_px=dict(r.um_per_px),
            t_trigger_s=max(t_arrival, self._t0),
            backlights=dict(r.backlights) or None,
            lane=str(i % self.lanes + 1),
            truth=r.truth,
        )

    def close(self) -> None:
        self._pool = []
