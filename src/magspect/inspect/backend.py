"""The ONNX segmentation backend: onnxruntime only, preprocessing read from the model's manifest.

* Execution providers are chosen explicitly (TensorRT, CUDA, OpenVINO, CPU: the first installed,
  or the caller's list) and the one in use is reported.
* Images larger than the manifest's tile are cut into overlapping tiles; each output pixel is taken
  from the tile in which it lies farthest from a border, so the stitched map has no seams and a
  defect a few pixels wide survives on a large image.
* ``predict`` batches same-sized inputs; the session is shared and thread-safe.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from magspect.models.manifest import METADATA_KEY, Manifest, full_resolution_logits
from magspect.types import DEFECT_CLASSES, TTA_MODES, Tta

PROVIDER_PREFERENCE: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class ModelError(RuntimeError):
    """The model cannot be used: missing, corrupt, wrong checksum, no manifest, bad provider."""


def bundled_model_path(int8: bool = False) -> Path:
    name = "default-int8.onnx" if int8 else "default.onnx"
    return Path(str(resources.files("magspect.models") / "weights" / name))


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_sha256(path: Path) -> str | None:
    """The checksum recorded for ``path`` in ``SHA256SUMS`` beside it (sha256sum format), if any."""
    sums = path.parent / "SHA256SUMS"
    if not sums.is_file():
        return None
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == path.name:
            return parts[0].lower()
    return None


def choose_providers(requested: Sequence[str] | None = None) -> list[str]:
    """Providers to use, best first. ``requested`` names (short or full) must all be installed."""
    available = ort.get_available_providers()
    if not requested:
        return [p for p in PROVIDER_PREFERENCE if p in available] or ["CPUExecutionProvider"]
    chosen = []
    for name in requested:
        full = SHORT_NAMES.get(name.lower(), name)
        if full not in available:
            raise ModelError(f"execution provider {name!r} is not installed here; available: {', '.join(available)}")
        chosen.append(full)
    return chosen


def open_session(
    path: Path,
    opts: ort.SessionOptions,
    providers: Sequence[str] | None,
    metadata_key: str,
    error: type[Exception],
    what: str,
    *,
    expected_sha: str | None = None,
) -> tuple[ort.InferenceSession, str, str]:
    """An onnxruntime session for a magspect ONNX file, its sha256 and its embedded manifest (JSON).

    The file must exist, match the checksum given or recorded beside it (``SHA256SUMS``), load, and
    carry metadata ``metadata_key``; otherwise ``error`` names what is wrong (``what``: "model",
    "verifier")."""
    if not path.is_file():
        raise error(f"{what} file {path} does not exist")
    sha = sha256_file(path)
    want = (expected_sha or expected_sha256(path) or "").lower()
    if want and want != sha:
        raise error(
            f"{what} {path.name}: sha256 {sha[:12]}… does not match the recorded {want[:12]}…; "
            "the file is corrupt or was replaced"
        )
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=choose_providers(providers))
    except ModelError:
        raise
    except Exception as exc:  # onnxruntime raises its own exception types
        raise error(f"{what} {path}: onnxruntime cannot load it: {exc}") from None
    meta = session.get_modelmeta().custom_metadata_map
    if metadata_key not in meta:
        raise error(f"{what} {path} has no embedded magspect manifest ({metadata_key!r})")
    return session, sha, meta[metadata_key]


@dataclass(frozen=True)
class Segmentation:
    """Per-pixel output for one image."""

    class_mask: np.ndarray  # HxW uint8 class ids
    # HxW float32, softmax probability of the winning class (a Segmenter built with
    # confidence="defects" fills it on defect-class pixels only, 1.0 elsewhere)
    confidence: np.ndarray


# test-time augmentation (magspect.types.Tta): the image axes mirrored for each extra model run
# (N x C x H x W arrays)
TTA_FLIPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "none": (),
    # left-right: a fifth fewer false calls, but defects seen in fragments: more escapes on the
    # test suite (BENCHMARKS.md, "Inspection end to end"); off by default
    "hflip": ((3,),),
    "flips": ((3,), (2,), (2, 3)),  # left-right, up-down and both
}


def _softmax_argmax(logits: np.ndarray, only: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """logits C x H x W -> (argmax uint8, max softmax prob float32).

    One pass per class over contiguous planes (numpy's ``argmax(axis=0)`` strides across them and
    is several times slower); ties go to the lower class id, as with ``argmax``. ``only``: class
    ids whose pixels need the probability; elsewhere it is left at 1.0 (the exponentials are more
    than half the work, and the Inspector reads the probability on defect pixels only).
    """
    best = logits[0].astype(np.float32, copy=True)
    idx = np.zeros(best.shape, np.uint8)
    for c in range(1, logits.shape[0]):
        better = logits[c] > best
        idx[better] = c
        np.maximum(best, logits[c], out=best)
    if only is not None:
        conf = np.ones(best.shape, np.float32)
        sel = np.isin(idx, np.asarray(only, np.uint8))
        if sel.any():
            conf[sel] = 1.0 / np.exp(logits[:, sel] - best[sel]).sum(0)
        return idx, conf
    total = np.zeros(best.shape, np.float32)
    tmp = np.empty_like(best)
    for c in range(logits.shape[0]):
        np.subtract(logits[c], best, out=tmp)
        np.exp(tmp, out=tmp)
        total += tmp
    np.reciprocal(total, out=total)  # exp(max - max) / sum
    return idx, total


def fit_roi(roi: tuple[int, int, int, int], shape_hw: tuple[int, int], multiple: int) -> tuple[int, int, int, int]:
    """``roi`` (x0, y0, x1, y1) grown to sides that are multiples of ``multiple`` inside an image of
    ``shape_hw`` where it can be (then the model needs no padding), clipped to the image."""
    h, w = shape_hw

    def grow(a: int, b: int, n: int) -> tuple[int, int]:
        a, b = max(a, 0), min(b, n)
        want = -(-(b - a) // multiple) * multiple
        if want >= n:
            return 0, n
        extra = want - (b - a)
        a = max(a - extra // 2, 0)
        b = a + want
        if b > n:
            a, b = n - want, n
        return a, b

    x0, x1 = grow(roi[0], roi[2], w)
    y0, y1 = grow(roi[1], roi[3], h)
    return x0, y0, x1, y1


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` shared px."""
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    n = int(np.ceil((length - tile) / step)) + 1
    starts = np.linspace(0, length - tile, n).round().astype(int)
    return sorted(set(starts.tolist()))


class Segmenter:
    """An exported magspect model, ready to run. Thread-safe."""

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        expected_sha: str | None = None,
        warmup: bool = True,
        spin: bool = True,
        confidence: Literal["all", "defects"] = "all",
        tta: Tta = "none",
    ) -> None:
        """``confidence``: where :class:`Segmentation` holds the winning class's probability: on
        every pixel, or on the defect classes' pixels only (1.0 elsewhere; what the Inspector reads,
        without the exponentials of every other pixel). ``tta``: test-time augmentation, the
        logits averaged over mirrored copies of the image (:data:`TTA_FLIPS`; each copy costs one
        more model run)."""
        if confidence not in ("all", "defects"):
            raise ValueError(f"confidence must be 'all' or 'defects', got {confidence!r}")
        if tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}; got {tta!r}")
        self.tta = tta
        self.path = Path(path) if path is not None else bundled_model_path()
        opts = ort.SessionOptions()
        n = threads or int(os.environ.get("MAGSPECT_THREADS", "0")) or None
        if n:
            opts.intra_op_num_threads = n
            opts.inter_op_num_threads = 1
        if not spin:  # idle pool threads sleep instead of spinning: better when other work shares the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session, self.sha256, meta = open_session(
            self.path, opts, providers, METADATA_KEY, ModelError, "model", expected_sha=expected_sha
        )
        self.manifest = Manifest.from_json(meta)
        self._confidence_for = (
            None if confidence == "all"
            else [i for i, c in enumerate(self.manifest.classes) if c in DEFECT_CLASSES]
        )
        self.provider = self.session.get_providers()[0]
        self._input = self.manifest.input.name
        self._output = self.manifest.output.name
        self._lock = threading.Lock()  # only for lazy state; session.run itself is thread-safe
        if warmup:
            side = self.manifest.input_multiple * max(1, 128 // self.manifest.input_multiple)
            self.predict([np.zeros((side, side), np.uint8)])

    @property
    def name(self) -> str:
        base = f"{self.manifest.model_name}-{self.manifest.precision}"
        return base if self.tta == "none" else f"{base}+tta-{self.tta}"

    # -- preprocessing ---------------------------------------------------------------------
    def to_input(self, image: np.ndarray) -> np.ndarray:
        """Raw image (HxW or HxWx3 BGR, uint8/uint16) -> C x H x W float32 as the manifest says."""
        pre = self.manifest.preprocess
        divisor = pre.divisor_for(image.dtype.name)
        if self.manifest.in_channels == 1:
            if image.ndim == 3:
                image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            x = image.astype(np.float32)[None] / divisor
        else:
            if image.ndim == 2:
                image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
            x = image[:, :, ::-1].astype(np.float32).transpose(2, 0, 1) / divisor  # BGR -> RGB
        return np.ascontiguousarray(x)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Logits at the input's size (a stride-2 export's are upsampled here, as the manifest says),
        averaged over the mirrored copies that ``tta`` asks for."""
        logits = self.session.run([self._output], {self._input: batch})[0]
        flips = TTA_FLIPS[self.tta]
        if flips:
            total = logits.astype(np.float32, copy=True)
            for axes in flips:  # mirror, run, mirror the logits back (padded sizes are even: grids line up)
                y = self.session.run([self._output], {self._input: np.ascontiguousarray(np.flip(batch, axes))})[0]
                total += np.flip(y, axes)
            logits = total / (1 + len(flips))
        return full_resolution_logits(logits, self.manifest.output_stride)

    def _pad(self, x: np.ndarray) -> tuple[np.ndarray, int, int]:
        mult = self.manifest.input_multiple
        _, h, w = x.shape
        ph, pw = (-h) % mult, (-w) % mult
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
        return x, h, w

    # -- inference -------------------------------------------------------------------------
    def logits(self, images: Sequence[np.ndarray], batch_size: int = 8) -> list[np.ndarray]:
        """Class logits (C x H x W float32) for each image, tiling the large ones."""
        tile = self.manifest.tile_size_px
        inputs = [self.to_input(im) for im in images]
        out: list[np.ndarray | None] = [None] * len(inputs)
        whole = [i for i, x in enumerate(inputs) if max(x.shape[1:]) <= tile]
        # images that fit: batch the ones of equal padded size together
        groups: dict[tuple[int, int], list[int]] = {}
        padded = {}
        for i in whole:
            xp, h, w = self._pad(inputs[i])
            padded[i] = (xp, h, w)
            groups.setdefault(xp.shape[1:], []).append(i)
        for idx in groups.values():
            for k in range(0, len(idx), batch_size):
                chunk = idx[k : k + batch_size]
                y = self._run(np.stack([padded[i][0] for i in chunk]))
                for j, i in enumerate(chunk):
                    _, h, w = padded[i]
                    out[i] = y[j, :, :h, :w]
        for i, x in enumerate(inputs):
            if out[i] is None:
                out[i] = self._tiled(x, batch_size)
        return out  # type: ignore[return-value]

    def _tiled(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        tile, overlap = self.manifest.tile_size_px, self.manifest.tile_overlap_px
        _, h, w = x.shape
        ys, xs = tile_origins(h, tile, overlap), tile_origins(w, tile, overlap)
        result = np.empty((self.manifest.num_classes, h, w), np.float32)
        # Each pixel belongs to the tile whose centre is nearest (along each axis): the cut between
        # neighbours falls in the middle of their overlap, far from both tiles' borders.
        def cuts(starts: list[int], length: int) -> list[tuple[int, int]]:
            bounds = [0]
            for a, b in zip(starts, starts[1:], strict=False):
                bounds.append((b + min(a + tile, length)) // 2)
            bounds.append(length)
            return list(zip(bounds[:-1], bounds[1:], strict=True))

        ycuts, xcuts = cuts(ys, h), cuts(xs, w)
        jobs = [(y0, x0, yc, xc) for y0, yc in zip(ys, ycuts, strict=True) for x0, xc in zip(xs, xcuts, strict=True)]
        for k in range(0, len(jobs), batch_size):
            chunk = jobs[k : k + batch_size]
            tiles = []
            for y0, x0, _, _ in chunk:
                t, th, tw = self._pad(x[:, y0 : y0 + tile, x0 : x0 + tile])
                tiles.append(t)
            shapes = {t.shape for t in tiles}
            ys_out = (
                list(self._run(np.stack(tiles)))
                if len(shapes) == 1
                else [self._run(t[None])[0] for t in tiles]
            )
            for (y0, x0, (ya, yb), (xa, xb)), y in zip(chunk, ys_out, strict=True):
                result[:, ya:yb, xa:xb] = y[:, ya - y0 : yb - y0, xa - x0 : xb - x0]
        return result

    def predict(
        self,
        images: Sequence[np.ndarray],
        batch_size: int = 8,
        rois: Sequence[tuple[int, int, int, int] | None] | None = None,
    ) -> list[Segmentation]:
        """Class mask and confidence per image.

        ``rois``: per image, ``None`` or a box ``(x0, y0, x1, y1)`` (exclusive ends) to run the
        model on: where the part is, with room for context. Outside it every pixel is background
        with confidence 1. A box a fraction of the image costs that fraction of the model's time.
        """
        if rois is None:
            rois = [None] * len(images)
        if len(rois) != len(images):
            raise ValueError(f"{len(rois)} rois for {len(images)} images")
        mult = self.manifest.input_multiple
        boxes = [
            (0, 0, im.shape[1], im.shape[0]) if r is None else fit_roi(r, im.shape[:2], mult)
            for im, r in zip(images, rois, strict=True)
        ]
        crops = [im[y0:y1, x0:x1] for im, (x0, y0, x1, y1) in zip(images, boxes, strict=True)]
        out = []
        for im, (x0, y0, x1, y1), lg in zip(images, boxes, self.logits(crops, batch_size), strict=True):
            cls, conf = _softmax_argmax(lg, self._confidence_for)
            if cls.shape == im.shape[:2]:
                out.append(Segmentation(cls, conf))
                continue
            full_cls = np.zeros(im.shape[:2], np.uint8)
            full_conf = np.ones(im.shape[:2], np.float32)
            full_cls[y0:y1, x0:x1] = cls
            full_conf[y0:y1, x0:x1] = conf
            out.append(Segmentation(full_cls, full_conf))
        return out
