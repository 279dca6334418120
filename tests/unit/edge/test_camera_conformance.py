"""Every Camera implementation meets the one contract the station relies on (a Protocol plus this test)."""

import shutil
import subprocess
import time

import cv2
import numpy as np
import pytest

from magspect.edge import (
    AravisCamera,
    Camera,
    PartCapture,
    SimulatedLine,
    SourceExhausted,
    VideoCaptureCamera,
    WatchedFolder,
    aravis_available,
)

SPEC = "def-blk-20x10x5-nicuni"


def _sim(tmp_path):
    return SimulatedLine(SPEC, rate_hz=50, n_parts=3, size_px=256, prerender=2), 3


def _folder(tmp_path):
    rng = np.random.default_rng(0)
    for serial in ("A1", "A2", "A3"):
        for view in ("top", "side"):
            cv2.imwrite(str(tmp_path / f"{serial}_{view}.png"), rng.integers(0, 255, (64, 80), np.uint8))
        cv2.imwrite(str(tmp_path / f"{serial}_top_backlight.png"), rng.integers(0, 255, (64, 80), np.uint8))
    cv2.imwrite(str(tmp_path / "A4_top.png"), rng.integers(0, 255, (64, 80), np.uint8))  # incomplete: not a part
    return WatchedFolder(tmp_path, views=("top", "side"), um_per_px={"top": 20.0, "side": 21.0}, settle_s=0.0), 3


def _video(tmp_path):
    path = tmp_path / "line.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    assert w.isOpened(), "OpenCV cannot write MJPG AVI here"
    for i in range(6):
        frame = np.full((64, 96, 3), 40 * i, np.uint8)
        cv2.circle(frame, (48, 32), 10 + i, (255, 255, 255), -1)
        w.write(frame)
    w.release()
    return VideoCaptureCamera(str(path), views=("top", "side"), um_per_px=25.0), 3  # 6 frames, 2 views per part


@pytest.fixture
def fake_gige():
    why = aravis_available()
    exe = shutil.which("arv-fake-gv-camera-0.8")
    if why or exe is None:
        pytest.skip(why or "arv-fake-gv-camera-0.8 not installed (Debian package aravis-tools)")
    proc = subprocess.Popen([exe, "-i", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield
    proc.terminate()
    proc.wait(10)


def _aravis(tmp_path):
    return AravisCamera(None, views=("top",), um_per_px=25.0), 2


FACTORIES = {"sim": _sim, "folder": _folder, "opencv": _video, "aravis": _aravis}


@pytest.mark.parametrize("kind", list(FACTORIES))
def test_camera_conformance(kind, tmp_path, request):
    if kind == "aravis":
        request.getfixturevalue("fake_gige")
    cam, n_expected = FACTORIES[kind](tmp_path)
    assert isinstance(cam, Camera) and isinstance(cam.name, str) and cam.name
    cam.open()
    caps: list[PartCapture] = []
    t_end = time.monotonic() + 15
    try:
        while len(caps) < n_expected and time.monotonic() < t_end:
            t_before = time.monotonic()
            try:
                cap = cam.grab(0.5)
            except SourceExhausted:
                break
            if cap is None:
                continue
            assert isinstance(cap, PartCapture)
            assert cap.t_trigger_s <= time.monotonic()
            assert cap.t_trigger_s >= t_before - 1.0  # on the station's clock, not some other epoch
            assert set(cap.views) <= {"top", "side"} and cap.views
            assert set(cap.um_per_px) == set(cap.views) and all(s > 0 for s in cap.um_per_px.values())
            for img in cap.views.values():
                assert img.ndim == 2 and img.dtype in (np.uint8, np.uint16) and img.size > 0
            if cap.backlights:
                for v, img in cap.backlights.items():
                    assert img.shape == cap.views[v].shape
            caps.append(cap)
        assert len(caps) == n_expected, f"{kind}: {len(caps)} parts, expected {n_expected}"
        assert len({c.serial for c in caps}) == len(caps), "serials must be unique"
        if kind != "aravis":  # finite sources end: exhausted or (folder) nothing more within the timeout
            try:
                extra = cam.grab(0.3)
            except SourceExhausted:
                extra = None
            assert extra is None
    finally:
        cam.close()
    cam.close()  # closing twice is harmless


def test_sim_line_lighting():
    """One front light for every view when asked (a dark-field station), drawn per view otherwise;
    the capture's truth says which."""
    lit = SimulatedLine(SPEC, rate_hz=50, n_parts=3, size_px=128, prerender=3, lighting="darkfield")
    drawn = SimulatedLine(SPEC, rate_hz=50, n_parts=3, size_px=128, prerender=3)
    for cam in (lit, drawn):
        cam.open()
    lights = {name: [c.truth["lighting"] for c in cam.rendered] for name, cam in (("lit", lit), ("drawn", drawn))}
    assert all(v == {"top": "darkfield", "side": "darkfield"} for v in lights["lit"])
    assert {x for v in lights["drawn"] for x in v.values()} <= {"coaxial", "dome", "darkfield"}
    assert lights["drawn"] != lights["lit"]  # these seeds draw other lights too
    with pytest.raises(ValueError, match="front light"):
        SimulatedLine(SPEC, lighting="backlight")


def test_folder_source_pairs_views_and_moves_files(tmp_path):
    cam, _ = _folder(tmp_path)
    cam.open()
    cap = cam.grab(1.0)
    assert cap.serial == "A1" and set(cap.backlights) == {"top"} and cap.um_per_px == {"top": 20.0, "side": 21.0}
    assert not (tmp_path / "A1_top.png").exists() and (tmp_path / "done" / "A1_top.png").exists()


def test_sim_line_paces_arrivals_and_carries_truth():
    cam = SimulatedLine(SPEC, rate_hz=10, n_parts=4, size_px=256, prerender=2, defect_rate=1.0)
    cam.open()
    caps = []
    while True:
        try:
            cap = cam.grab(1.0)
        except SourceExhausted:
            break
        if cap is not None:
            caps.append(cap)
    gaps = np.diff([c.t_trigger_s for c in caps])
    assert len(caps) == 4 and np.allclose(gaps, 0.1, atol=0.02)
    assert all(c.truth is not None and "conforming" in c.truth for c in caps)
    assert all(c.backlights and set(c.backlights) == {"top", "side"} for c in caps)
