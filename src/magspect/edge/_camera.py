"""The one contract every image source meets: a :class:`Camera` yields :class:`PartCapture` objects.

A capture is one part: its views (``{"top": img, "side": img}``), optional back-lit images of the
same views for metrology, the scale of each view, its serial and the moment it was triggered (the
station's clock, :func:`time.monotonic`), from which the station derives the part's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


class SourceExhausted(Exception):  # noqa: N818 - like StopIteration: not an error, the end
    """A finite source (a video file, a simulated run of N parts) has no more parts."""


class CameraError(RuntimeError):
    """The source cannot be opened or read (device gone, bad URI, missing optional dependency)."""


@dataclass
class PartCapture:
    """One part as acquired: views, scale, identity and trigger time."""

    serial: str
    views: dict[str, np.ndarray]
    um_per_px: dict[str, float]
    t_trigger_s: float = field(default_factory=time.monotonic)  # time.monotonic() at the trigger
    backlights: dict[str, np.ndarray] | None = None
    lane: str = "1"
    truth: Mapping[str, Any] | None = None  # known truth (simulated line only)

    def __post_init__(self) -> None:
        if not self.views:
            raise ValueError("a capture needs at least one view")
        for v, img in self.views.items():
            if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
                raise ValueError(f"view {v!r}: expected an HxW or HxWx3 array")
        if self.backlights and set(self.backlights) - set(self.views):
            raise ValueError("back-lit images given for views that were not captured")


@runtime_checkable
class Camera(Protocol):
    """An image source: opened once, polled by the acquisition stage, closed at stop.

    ``grab`` returns the next part, ``None`` when none arrived within ``timeout_s`` (the station
    polls again), and raises :class:`SourceExhausted` when a finite source is done. It is only
    called from one thread.
    """

    name: str

    def open(self) -> None: ...

    def grab(self, timeout_s: float) -> PartCapture | None: ...

    def close(self) -> None: ...


def split_views(view_names: tuple[str, ...], frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Consecutive frames of a single-sensor source assigned to the configured views, in order."""
    return dict(zip(view_names, frames, strict=True))
