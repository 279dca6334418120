"""Decoding images for inspection: checked by magic bytes and header size before any pixel is decoded.

Accepted: PNG, JPEG, TIFF, BMP; 8- or 16-bit; grayscale, RGB/BGR or RGBA (alpha dropped).
Everything else raises :class:`ImageError` with a message that names the input and what is wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: above any line-scan tile we expect, far below a decompression bomb
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


class ImageError(ValueError):
    """An image that cannot be inspected. The message says which input and why."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width_px: int | None
    height_px: int | None


def sniff_format(data: bytes) -> str | None:
    """The container format from the file's magic bytes, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    n = len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + seg_len
    return None


def probe(data: bytes) -> ImageInfo:
    """Format and size from the header alone (size None where the header does not say cheaply)."""
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("not an image: the content is not PNG, JPEG, TIFF or BMP (checked by magic bytes)")
    w = h = None
    try:
        if fmt == "png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
        elif fmt == "bmp" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            w, h = abs(w), abs(h)
        elif fmt == "jpeg":
            size = _jpeg_size(data)
            if size:
                w, h = size
    except struct.error:
        pass
    return ImageInfo(fmt, w, h)


def decode_image(
    source: bytes | bytearray | memoryview | str | Path | np.ndarray,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Decode to ``HxW`` (grayscale) or ``HxWx3`` (BGR), dtype uint8 or uint16, unchanged bit depth.

    ``source`` may be encoded bytes, a path, or an already-decoded array (validated the same way).
    """
    label = name or (str(source) if isinstance(source, str | Path) else "image")
    if isinstance(source, np.ndarray):
        return _validate_array(source, label, max_pixels)
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{label}: no such file")
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(f"{label}: file is {size} bytes, more than the {max_bytes}-byte limit")
        data = path.read_bytes()
    else:
        data = bytes(source)
    if len(data) == 0:
        raise ImageError(f"{label}: empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"{label}: {len(data)} bytes, more than the {max_bytes}-byte limit")
    try:
        info = probe(data)
    except ImageError as exc:
        raise ImageError(f"{label}: {exc}") from None
    if info.width_px is not None and info.height_px is not None:
        if info.width_px <= 0 or info.height_px <= 0:
            raise ImageError(f"{label}: header says {info.width_px}x{info.height_px} px")
        if info.width_px * info.height_px > max_pixels:
            raise ImageError(
                f"{label}: header says {info.width_px}x{info.height_px} px, more than the "
                f"{max_pixels}-pixel limit (refused before decoding)"
            )
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"{label}: {info.format.upper()} could not be decoded ({exc.msg.strip()})") from None
    if img is None:
        raise ImageError(f"{label}: {info.format.upper()} data is corrupt or truncated and could not be decoded")
    return _validate_array(img, label, max_pixels)


def _validate_array(img: np.ndarray, label: str, max_pixels: int) -> np.ndarray:
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{label}: pixel type {img.dtype} not supported; use 8- or 16-bit")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[:, :, :3])  # drop alpha; OpenCV gives BGRA
    if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ImageError(f"{label}: shape {img.shape} is neither grayscale HxW nor colour HxWx3")
    h, w = img.shape[:2]
    if h == 0 or w == 0:
        raise ImageError(f"{label}: image is empty ({w}x{h} px)")
    if h * w > max_pixels:
        raise ImageError(f"{label}: {w}x{h} px is more than the {max_pixels}-pixel limit")
    if min(h, w) < 32:
        raise ImageError(f"{label}: {w}x{h} px is too small to inspect (at least 32 px a side)")
    return img


def read_image(path: str | Path) -> np.ndarray:
    return decode_image(Path(path))
