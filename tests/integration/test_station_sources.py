"""Real sources through the whole station: parts dropped in a watched folder, and frames of a fake
GigE Vision camera (Aravis), inspected, decided and recorded."""

import shutil
import subprocess
import time

import cv2
import pytest

from magspect.datasets import SynthConfig, generate_part
from magspect.edge import AravisCamera, Station, TruthSegmenter, WatchedFolder, aravis_available
from magspect.inspect import Inspector
from magspect.types import Verdict

SPEC = "def-blk-20x10x5-nicuni"


def _run(camera, n, timeout=30):
    decisions = []

    class Probe:
        def start(self, st):
            pass

        def publish(self, d):
            decisions.append(d)

        def stop(self):
            pass

    st = Station(camera, Inspector(segmenter=TruthSegmenter()), SPEC, deadline_ms=10000, outputs=[Probe()])
    st.start()
    t_end = time.monotonic() + timeout
    while st.counters.acquired < n and time.monotonic() < t_end:
        time.sleep(0.05)
    st.stop()
    return st, decisions


def test_watched_folder_station(tmp_path):
    cfg = SynthConfig(size_px=512, defects=False, out_of_tolerance_rate=0.0, dimension_sigma_fraction=0.05)
    scale = None
    for k, serial in enumerate(("LOT7-001", "LOT7-002")):
        part = generate_part(SPEC, 40 + k, cfg)
        back = generate_part(SPEC, 40 + k, cfg.with_(lighting="backlight"))
        for v in ("top", "side"):
            cv2.imwrite(str(tmp_path / f"{serial}_{v}.png"), part.views[v].image)
            cv2.imwrite(str(tmp_path / f"{serial}_{v}_backlight.png"), back.views[v].image)
        scale = {v: part.views[v].truth["um_per_px"] for v in ("top", "side")}
    st, decisions = _run(WatchedFolder(tmp_path, um_per_px=scale, settle_s=0.0), 2)
    # two inference workers: decisions may complete in either order
    assert sorted(d.serial for d in decisions) == ["LOT7-001", "LOT7-002"]
    assert st.counters.acquired == 2 == st.counters.inspected
    for d in decisions:  # clean, in-tolerance parts measured on their back-lit images
        assert d.result.error is None and d.result.verdict in (Verdict.PASS, Verdict.REVIEW)
        assert d.result.measurements["length"].value == pytest.approx(20.0, abs=0.1)
    assert sorted(p.name for p in (tmp_path / "done").iterdir())[:2] == ["LOT7-001_side.png",
                                                                        "LOT7-001_side_backlight.png"]


def test_fake_gige_camera_station():
    why = aravis_available()
    exe = shutil.which("arv-fake-gv-camera-0.8")
    if why or exe is None:
        pytest.skip(why or "arv-fake-gv-camera-0.8 not installed (Debian package aravis-tools)")
    proc = subprocess.Popen([exe, "-i", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        st, decisions = _run(AravisCamera(None, views=("top", "side"), um_per_px=25.0), 3)
    finally:
        proc.terminate()
        proc.wait(10)
    c = st.counters
    assert c.acquired >= 3 and c.acquired == c.inspected + c.fail_safe
    # the fake camera's test pattern is no magnet: every frame must be rejected, never passed
    assert decisions and all(d.reject for d in decisions)
