import struct
import zlib

import cv2
import numpy as np
import pytest

from magspect.inspect.imageio import ImageError, decode_image, probe, sniff_format


def _png(img):
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


def _png_header(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_formats_round_trip():
    img = np.random.default_rng(0).integers(0, 255, (40, 50), dtype=np.uint8)
    for ext in (".png", ".bmp", ".tiff"):
        ok, buf = cv2.imencode(ext, img)
        out = decode_image(buf.tobytes())
        np.testing.assert_array_equal(out, img)
    ok, buf = cv2.imencode(".jpg", img)
    assert decode_image(buf.tobytes()).shape == (40, 50)
    assert probe(buf.tobytes()).width_px == 50 and probe(buf.tobytes()).height_px == 40


def test_16bit_and_rgba_kept_honest():
    g16 = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    out = decode_image(_png(g16))
    assert out.dtype == np.uint16 and out.max() == g16.max()
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 2] = 200
    rgba[..., 3] = 7
    out = decode_image(_png(rgba))
    assert out.shape == (40, 40, 3) and out[0, 0, 2] == 200


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", r"empty \(0 bytes\)"),
        (b"hello, I am text" * 10, "not an image"),
        (b"%PDF-1.4 ...", "not an image"),
        (_png_header(60000, 60000), "60000x60000 px, more than the"),
        (_png_header(0, 10), "header says 0x10"),
    ],
)
def test_bad_input_is_named(data, needle):
    with pytest.raises(ImageError, match=needle):
        decode_image(data, name="upload.png")


def test_truncated_png_is_refused():
    data = _png(np.random.default_rng(1).integers(0, 255, (80, 80), dtype=np.uint8))
    with pytest.raises(ImageError, match="upload.png: .*(corrupt or truncated|could not be decoded)"):
        decode_image(data[: len(data) // 2], name="upload.png")


def test_arrays_are_validated(tmp_path):
    with pytest.raises(ImageError, match="pixel type float64"):
        decode_image(np.zeros((64, 64)))
    with pytest.raises(ImageError, match="too small"):
        decode_image(np.zeros((8, 8), np.uint8))
    with pytest.raises(ImageError, match="no such file"):
        decode_image(tmp_path / "missing.png")
    assert sniff_format(b"BM....") == "bmp"
