"""Real image sources: a watched folder, OpenCV VideoCapture (USB, RTSP, files) and GigE Vision (Aravis)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from magspect.edge._camera import CameraError, PartCapture, SourceExhausted, split_views

_IMAGE_EXT = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")


def _scales(views: tuple[str, ...], um_per_px: float | Mapping[str, float]) -> dict[str, float]:
    if isinstance(um_per_px, Mapping):
        missing = [v for v in views if v not in um_per_px]
        if missing:
            raise ValueError(f"um_per_px missing for view(s) {missing}")
        return {v: float(um_per_px[v]) for v in views}
    return dict.fromkeys(views, float(um_per_px))


class WatchedFolder:
    """Parts dropped into a folder as ``<serial>_<view>.<ext>`` (and ``<serial>_<view>_backlight.<ext>``).

    A part is taken once every configured view of its serial is present and its files have not
    changed for ``settle_s`` (a writer still copying is not read half-way). Taken files move to
    ``<folder>/done/``. Implements :class:`~magspect.edge.Camera`; never exhausted.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        views: tuple[str, ...] = ("top", "side"),
        um_per_px: float | Mapping[str, float],
        settle_s: float = 0.2,
        poll_s: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.views = tuple(views)
        self.um_per_px = _scales(self.views, um_per_px)
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.name = f"folder:{self.path}"

    def open(self) -> None:
        if not self.path.is_dir():
            raise CameraError(f"watched folder {self.path} does not exist")
        (self.path / "done").mkdir(exist_ok=True)

    def _ready(self) -> tuple[str, dict[str, Path], dict[str, Path]] | None:
        groups: dict[str, dict[str, Path]] = {}
        now = time.time()
        for p in sorted(self.path.iterdir(), key=lambda q: q.name):
            if not p.is_file() or p.suffix.lower() not in _IMAGE_EXT:
                continue
            serial, _, rest = p.stem.rpartition("_")
            key = rest
            if rest == "backlight":
                serial, _, view = serial.rpartition("_")
                key = f"{view}_backlight"
            if not serial:
                continue
            try:
                if now - p.stat().st_mtime < self.settle_s:
                    continue
            except FileNotFoundError:
                continue
            groups.setdefault(serial, {})[key] = p
        for serial in sorted(groups):
            files = groups[serial]
            if all(v in files for v in self.views):
                back = {v: files[f"{v}_backlight"] for v in self.views if f"{v}_backlight" in files}
                return serial, {v: files[v] for v in self.views}, back
        return None

    def grab(self, timeout_s: float) -> PartCapture | None:
        import cv2

        t_end = time.monotonic() + timeout_s
        while True:
            found = self._ready()
            if found is not None:
                break
            if time.monotonic() >= t_end:
                return None
            time.sleep(self.poll_s)
        t_trigger = time.monotonic()
        serial, files, back_files = found
        images, backs = {}, {}
        for target, src in ((images, files), (backs, back_files)):
            for v, p in src.items():
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None:  # unreadable: still a part, judged (fail closed) by the Inspector
                    img = np.zeros((1, 1), np.uint8)
                target[v] = img
        done = self.path / "done"
        for p in [*files.values(), *back_files.values()]:
            os.replace(p, done / p.name)
        return PartCapture(serial=serial, views=images, um_per_px=dict(self.um_per_px), t_trigger_s=t_trigger,
                           backlights=backs or None)

    def close(self) -> None:
        pass


class VideoCaptureCamera:
    """OpenCV VideoCapture: a USB camera index, an RTSP/HTTP URL or a video file.

    Each part takes one frame per configured view, in order (one sensor, views presented in turn);
    frames are converted to 8-bit grayscale. A file ends with :class:`SourceExhausted`.
    """

    def __init__(
        self,
        uri: str | int,
        *,
        views: tuple[str, ...] = ("top",),
        um_per_px: float | Mapping[str, float],
        serial_prefix: str = "CAM",
    ) -> None:
        self.uri = int(uri) if isinstance(uri, str) and uri.isdigit() else uri
        self.views = tuple(views)
        self.um_per_px = _scales(self.views, um_per_px)
        self.serial_prefix = serial_prefix
        self.name = f"opencv:{uri}"
        self._cap = None
        self._n = 0

    def open(self) -> None:
        import cv2

        self._cap = cv2.VideoCapture(self.uri)
        if not self._cap.isOpened():
            raise CameraError(f"cannot open video source {self.uri!r}")
        self._n = 0

    def grab(self, timeout_s: float) -> PartCapture | None:
        import cv2

        if self._cap is None:
            raise CameraError("camera not open")
        frames = []
        t_trigger = time.monotonic()
        for _ in self.views:
            ok, frame = self._cap.read()
            if not ok:
                if isinstance(self.uri, str) and Path(self.uri).is_file():
                    raise SourceExhausted(self.name)
                return None  # live stream: nothing this time
            if frame.ndim == 3:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            frames.append(frame)
        self._n += 1
        return PartCapture(serial=f"{self.serial_prefix}-{self._n:06d}", views=split_views(self.views, frames),
                           um_per_px=dict(self.um_per_px), t_trigger_s=t_trigger)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def aravis_available() -> str | None:
    """None when Aravis 0.8 can be used from Python, else why not."""
    try:
        import gi

        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis  # noqa: F401
    except (ImportError, ValueError) as exc:
        return (f"Aravis 0.8 is not usable from Python ({exc}); install aravis-tools gir1.2-aravis-0.8 "
                "and pygobject<3.51")
    return None


class AravisCamera:
    """A GigE Vision (or USB3 Vision) camera through Aravis; one frame per configured view per part.

    ``device_id``: as Aravis lists it (``None``: the first camera found). Frames are 8-bit
    (Mono8) or 16-bit (Mono16) grayscale, as the camera's pixel format gives them.
    """

    def __init__(
        self,
        device_id: str | None = None,
        *,
        views: tuple[str, ...] = ("top",),
        um_per_px: float | Mapping[str, float],
        serial_prefix: str = "GEV",
        n_buffers: int = 8,
    ) -> None:
        self.device_id = device_id
        self.views = tuple(views)
        self.um_per_px = _scales(self.views, um_per_px)
        self.serial_prefix = serial_prefix
        self.n_buffers = n_buffers
        self.name = f"aravis:{device_id or 'first'}"
        self._camera = None
        self._stream = None
        self._n = 0

    def open(self) -> None:
        why = aravis_available()
        if why:
            raise CameraError(why)
        from gi.repository import Aravis

        Aravis.update_device_list()
        try:
            self._camera = Aravis.Camera.new(self.device_id)
        except Exception as exc:  # noqa: BLE001 - GLib.Error
            raise CameraError(f"cannot open GigE Vision camera {self.device_id or '(first)'}: {exc}") from exc
        self._camera.set_acquisition_mode(Aravis.AcquisitionMode.CONTINUOUS)
        self._stream = self._camera.create_stream(None, None)
        size = self._camera.get_payload()
        for _ in range(self.n_buffers):
            self._stream.push_buffer(Aravis.Buffer.new_allocate(size))
        self._camera.start_acquisition()
        self._n = 0

    def _frame(self, timeout_s: float) -> np.ndarray | None:
        from gi.repository import Aravis

        buf = self._stream.timeout_pop_buffer(max(1, int(timeout_s * 1e6)))
        if buf is None:
            return None
        try:
            if buf.get_status() != Aravis.BufferStatus.SUCCESS:
                return None
            w, h = buf.get_image_width(), buf.get_image_height()
            data = buf.get_data()
            bits = Aravis.PIXEL_FORMAT_BIT_PER_PIXEL(buf.get_image_pixel_format()) if hasattr(
                Aravis, "PIXEL_FORMAT_BIT_PER_PIXEL") else 8 * len(data) // (w * h)
            dtype = np.uint16 if bits > 8 else np.uint8
            return np.frombuffer(data, dtype=dtype, count=w * h).reshape(h, w).copy()
        finally:
            self._stream.push_buffer(buf)

    def grab(self, timeout_s: float) -> PartCapture | None:
        if self._camera is None:
            raise CameraError("camera not open")
        t_trigger = time.monotonic()
        frames = []
        for _ in self.views:
            f = self._frame(timeout_s)
            if f is None:
                return None
            frames.append(f)
        self._n += 1
        return PartCapture(serial=f"{self.serial_prefix}-{self._n:06d}", views=split_views(self.views, frames),
                           um_per_px=dict(self.um_per_px), t_trigger_s=t_trigger)

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop_acquisition()
            except Exception:  # noqa: BLE001, S110 - closing a camera that is already gone
                pass
        self._camera = None
        self._stream = None
