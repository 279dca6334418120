"""A corpus of malformed uploads: each gets a 4xx with a clear JSON error (or is inspected), never a 5xx."""

import struct
import zlib

import cv2
import numpy as np
import pytest

from magspect.serve.testing import part_png


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header(w: int, h: int, *, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose header claims ``w`` x ``h`` with a tiny (bogus) IDAT: a decompression bomb's front."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def bmp_header(w: int, h: int) -> bytes:
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, 0, 0, 0, 0, 0)


def jpeg_bytes() -> bytes:
    img = np.zeros((96, 96), np.uint8)
    img[24:72, 24:72] = 150
    return cv2.imencode(".jpg", img)[1].tobytes()


def tiff_header(w: int, h: int) -> bytes:
    """A little-endian TIFF whose first IFD claims ``w`` x ``h`` (LONG tags) and holds no pixels."""
    entries = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (262, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + ifd


MALFORMED = {
    "huge tiff header": (tiff_header(100_000, 100_000), 413, "too_many_pixels"),
    "zero bytes": (b"", 422, "unprocessable_image"),
    "not an image": (b"hello, I am a text file\n" * 10, 415, "unsupported_media_type"),
    "html": (b"<html><body>x</body></html>", 415, "unsupported_media_type"),
    "truncated png": (part_png()[:60], 422, "unprocessable_image"),
    "truncated jpeg": (jpeg_bytes()[:200], 422, "unprocessable_image"),
    "png magic only": (b"\x89PNG\r\n\x1a\n", 422, "unprocessable_image"),
    "60000x60000 png header": (png_header(60_000, 60_000), 413, "too_many_pixels"),
    "zero-width png header": (png_header(0, 100), 422, "unprocessable_image"),
    "huge bmp header": (bmp_header(70_000, 70_000), 413, "too_many_pixels"),
    "8x8 png (too small to inspect)": (cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes(), 422,
                                        "unprocessable_image"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_upload(client, post, name):
    data, status, code = MALFORMED[name]
    r = post(client, top=data)
    assert r.status_code == status, (name, r.text)
    body = r.json()
    assert body["error"]["code"] == code and "top image" in body["error"]["message"]
    assert client.get("/v1/inspections").json()["total"] == 0  # nothing recorded for bad input


def test_bad_second_view_rejects_the_request(client, post):
    r = post(client, side=b"GIF89a....")
    assert r.status_code == 415 and "side image" in r.json()["error"]["message"]


def test_pixel_limit_is_a_setting(make_client, post):
    client = make_client(max_pixels=100 * 100)
    r = post(client, top=part_png(size_px=128))
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_many_pixels"
    assert post(client, top=part_png(size_px=96)).status_code == 201


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("16-bit png", part_png(bit_depth=16)),
        ("16-bit png with defect", part_png(True, bit_depth=16)),
        ("rgba png", part_png(channels=4)),
        ("rgb png", part_png(channels=3)),
        ("jpeg", jpeg_bytes()),
        ("tiff", cv2.imencode(".tif", np.full((64, 64), 90, np.uint8))[1].tobytes()),
        ("bmp", cv2.imencode(".bmp", np.full((64, 64), 90, np.uint8))[1].tobytes()),
    ],
)
def test_supported_formats_are_inspected(client, post, name, data):
    r = post(client, top=data)
    assert r.status_code == 201, (name, r.text)
    assert r.json()["result"]["verdict"] == ("REJECT" if "defect" in name else "PASS")


def test_file_over_the_size_limit(make_client, post):
    client = make_client(max_upload_bytes=4096)
    big = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (128, 128), np.uint8))[1].tobytes()
    assert len(big) > 4096
    r = post(client, top=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_body_over_the_limit_by_content_length(make_client):
    client = make_client(max_upload_bytes=4096)
    r = client.post("/v1/inspections", content=b"x" * 100_000,
                    headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_body_over_the_limit_while_streaming(make_client):
    client = make_client(max_upload_bytes=4096)

    def chunks():
        for _ in range(100):  # 100 kB > 2 x 4 kB + 64 kB of form overhead
            yield b"x" * 1000

    r = client.post("/v1/inspections", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("content", "ctype"),
    [
        (b'{"top": "abc"}', "application/json"),
        (b"--b\r\nContent-Disposition: form-data; name=\"top\"\r\n\r\nabc", "multipart/form-data; boundary=b"),
        (b"garbage", "multipart/form-data"),
        (b"top=abc&spec=x", "application/x-www-form-urlencoded"),
    ],
)
def test_not_multipart_or_broken_multipart(client, content, ctype):
    r = client.post("/v1/inspections", content=content, headers={"content-type": ctype})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["message"]


def test_text_field_instead_of_file(client):
    r = client.post("/v1/inspections", data={"top": "not a file", "spec": "com-blk-20x10x5-zn"})
    assert r.status_code == 422
