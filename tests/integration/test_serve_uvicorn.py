"""The service under a real uvicorn on 127.0.0.1 (a free port): HTTP end to end, 503 when the queue is full,
graceful shutdown that finishes the request in flight, and ``magspect serve`` with a real Inspector."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from magspect.serve import ServeSettings, create_app
from magspect.serve.testing import FakeInspector, part_png
from magspect.store import RecordStore

SPEC = "com-blk-20x10x5-zn"
FORM = {"spec": SPEC, "um_per_px": "25", "serial": "SN-77", "melt_lot": "M-9"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    def __init__(self, app, port):
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    timeout_graceful_shutdown=20))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive()

    def __exit__(self, *exc):
        if self.thread.is_alive():
            self.stop()


def post(url, defect=False, **kw):
    return httpx.post(f"{url}/v1/inspections", files={"top": ("t.png", part_png(defect), "image/png")},
                      data=FORM, timeout=30, **kw)


def test_end_to_end_over_http(tmp_path):
    app = create_app(ServeSettings(data_dir=tmp_path), inspector=FakeInspector())
    with ThreadServer(app, free_port()) as srv:
        r = post(srv.url, defect=True)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        assert httpx.get(srv.url + r.headers["location"]).json()["result"]["verdict"] == "REJECT"
        o = httpx.get(f"{srv.url}/v1/inspections/{rid}/overlay.png")
        assert o.status_code == 200 and o.content.startswith(b"\x89PNG")
        page = httpx.get(f"{srv.url}/v1/inspections", params={"lot": "M-9", "verdict": "REJECT"}).json()
        assert page["total"] == 1 and page["items"][0]["id"] == rid
        bad = httpx.post(f"{srv.url}/v1/inspections", files={"top": ("t.png", b"", "image/png")}, data=FORM)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "unprocessable_image"
        assert "magspect_inspections_total" in httpx.get(f"{srv.url}/metrics").text


def test_full_queue_is_503_over_http(tmp_path):
    app = create_app(ServeSettings(data_dir=tmp_path, workers=1, queue_size=1), inspector=FakeInspector(delay_s=0.5))
    with ThreadServer(app, free_port()) as srv:
        out = []
        threads = [threading.Thread(target=lambda: out.append(post(srv.url))) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    codes = sorted(r.status_code for r in out)
    assert codes.count(201) >= 2 and codes.count(503) >= 1 and set(codes) <= {201, 503}
    assert all(r.headers.get("retry-after") == "1" for r in out if r.status_code == 503)


def test_graceful_shutdown_finishes_the_request_in_flight(tmp_path):
    store = RecordStore(data_dir=tmp_path)
    app = create_app(ServeSettings(data_dir=tmp_path), inspector=FakeInspector(delay_s=1.0), store=store)
    srv = ThreadServer(app, free_port()).__enter__()
    out = []
    t = threading.Thread(target=lambda: out.append(post(srv.url)))
    t.start()
    deadline = time.monotonic() + 5
    while app.state.service.queue.depth == 0:  # the request has reached the inspector
        assert time.monotonic() < deadline
        time.sleep(0.01)
    srv.stop()  # what SIGTERM does: stop accepting, wait for requests in flight
    t.join(10)
    assert out and out[0].status_code == 201, out
    assert store.get(out[0].json()["id"]).meta.serial == "SN-77"  # the verdict was recorded before it was sent
    store.close()


def _tiny_onnx(path: Path) -> Path:
    """A hand-built ONNX segmenter (one 5x5 convolution) with a magspect manifest: a real model, no torch."""
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess

    rng = np.random.default_rng(0)
    w = rng.normal(0, 1, (5, 1, 5, 5)).astype(np.float32)
    b = rng.normal(0, 0.1, (5,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logits"], pads=[2, 2, 2, 2])], "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 5, "H", "W"])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    manifest = Manifest(model_name="tiny_conv", in_channels=1,
                        preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)),
                        input_multiple=8, tile_size_px=64, tile_overlap_px=16, um_per_px=25.0)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, manifest.to_json(indent=None)
    onnx.save(model, str(path))
    return path


def _serve_cli(tmp_path, model: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "MAGSPECT_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "magspect", "serve", "--port", str(port), "--model", str(model),
         "--data-dir", str(tmp_path / "data"), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("service not ready in time")


def test_magspect_serve_with_a_real_inspector_and_sigterm(tmp_path):
    """The CLI verb, a real Inspector over a real (tiny) ONNX model, and SIGTERM ends it cleanly."""
    model = _tiny_onnx(tmp_path / "tiny.onnx")
    port = free_port()
    proc = _serve_cli(tmp_path, model, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        assert httpx.get(f"{url}/v1/models").json()["models"][0]["name"].startswith("tiny_conv")
        r = post(url)
        assert r.status_code == 201, r.text
        res = r.json()["result"]
        assert res["model"]["name"].startswith("tiny_conv") and res["verdict"] in ("PASS", "REJECT", "REVIEW")
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught: status 0 or "killed by SIGTERM"
    assert rc in (0, -signal.SIGTERM), proc.stdout.read()
    with RecordStore(data_dir=tmp_path / "data") as store:
        assert store.get(r.json()["id"]).result.model.name.startswith("tiny_conv")


def test_bundled_model_end_to_end(tmp_path):
    from magspect.inspect.backend import bundled_model_path

    model = bundled_model_path()
    if not model.is_file():
        pytest.skip(f"the bundled model {model} is not there yet (it lands with the training issue)")
    from fastapi.testclient import TestClient

    app = create_app(ServeSettings(data_dir=tmp_path))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.2)
        r = client.post("/v1/inspections", files={"top": ("t.png", part_png(size_px=256), "image/png")}, data=FORM)
        assert r.status_code == 201, r.text
        assert r.json()["result"]["model"]["sha256"] == client.get("/v1/models").json()["models"][0]["sha256"]
