"""REST service vs in-process Inspector: throughput and p50/p99 latency at concurrency 1, 4 and 16.

The service runs as ``magspect serve`` under a real uvicorn on 127.0.0.1 (SQLite record store, every
verdict durably committed before it is answered); clients send multipart PNG uploads over HTTP. The
in-process side calls ``Inspector.inspect`` on the same PNG bytes from as many threads. Both use the
same model and onnxruntime threads; levels run side by side (in-process, then service) in one run.
Any failed request (not 201 / not a result) is counted and makes the script exit 1.

    .venv/bin/python benchmarks/bench_serve.py --parts 8 --requests 48
    .venv/bin/python benchmarks/bench_serve.py --model path/to.onnx   # default: the bundled model,
                                                                      # else a tiny stand-in (said so)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def tiny_model(path: Path) -> Path:
    """A one-convolution ONNX segmenter with a magspect manifest, biased to 'good surface' (few defects)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from magspect.models.manifest import METADATA_KEY, Manifest, Preprocess

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (5, 1, 5, 5)).astype(np.float32)
    b = np.array([0.0, 4.0, -4.0, -4.0, -4.0], np.float32)
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
                        input_multiple=8, tile_size_px=256, tile_overlap_px=32, um_per_px=25.0)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, manifest.to_json(indent=None)
    onnx.save(model, str(path))
    return path


def make_parts(spec: str, n: int, size_px: int) -> list[tuple[dict[str, bytes], dict[str, float]]]:
    import cv2

    from magspect.datasets import SynthConfig, generate_part

    parts = []
    for i in range(n):
        p = generate_part(spec=spec, seed=100 + i, config=SynthConfig(size_px=size_px))
        views = {v: cv2.imencode(".png", rv.image)[1].tobytes() for v, rv in p.views.items()}
        scale = {v: float(rv.truth["um_per_px"]) for v, rv in p.views.items()}
        parts.append((views, scale))
    return parts


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_inprocess(inspector, parts, spec: str, n: int, conc: int) -> tuple[float, list[float], int]:  # noqa: ANN001
    def one(i: int) -> tuple[float, bool]:
        views, scale = parts[i % len(parts)]
        t = time.perf_counter()
        r = inspector.inspect(views, spec=spec, um_per_px=scale)
        return time.perf_counter() - t, r.spec is not None

    with ThreadPoolExecutor(conc) as pool:
        t0 = time.perf_counter()
        out = list(pool.map(one, range(n)))
        wall = time.perf_counter() - t0
    return wall, [x for x, _ in out], sum(not ok for _, ok in out)


async def _run_http(url: str, parts, spec: str, n: int, conc: int) -> tuple[float, list[float], int]:  # noqa: ANN001
    import httpx

    sem = asyncio.Semaphore(conc)
    lat: list[float] = []
    failed = 0

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal failed
        views, scale = parts[i % len(parts)]
        files = {v: (f"{v}.png", data, "image/png") for v, data in views.items()}
        data = {"spec": spec, "serial": f"B{i}", "inspection_lot": "bench",
                **{f"um_per_px_{v}": str(s) for v, s in scale.items()}}
        async with sem:
            t = time.perf_counter()
            try:
                r = await client.post(f"{url}/v1/inspections", files=files, data=data)
                ok = r.status_code == 201
            except httpx.HTTPError:
                ok = False
            lat.append(time.perf_counter() - t)
            failed += not ok

    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(n)))
        wall = time.perf_counter() - t0
    return wall, lat, failed


def start_server(model: Path, threads: int, workers: int, data_dir: str) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MAGSPECT_THREADS": str(threads)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "magspect", "serve", "--port", str(port), "--model", str(model), "--threads",
         str(threads), "--workers", str(workers), "--queue-size", "256", "--data-dir", data_dir,
         "--log-level", "warning"], env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the service exited during startup")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service was not ready within 120 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--spec", default="def-blk-20x10x5-nicuni")
    ap.add_argument("--parts", type=int, default=8, help="distinct synthetic parts (top + side views)")
    ap.add_argument("--size", type=int, default=1024, help="view size in px")
    ap.add_argument("--requests", type=int, default=48, help="requests per concurrency level")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=4, help="alternating in-process/REST rounds per level")
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per inspection")
    ap.add_argument("--workers", type=int, default=4, help="the service's inference workers")
    args = ap.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

    from magspect.inspect.backend import bundled_model_path
    from magspect.inspect.inspector import Inspector

    tmp = tempfile.mkdtemp(prefix="bench_serve_")
    model = args.model or bundled_model_path()
    stand_in = False
    if not model.is_file():
        model, stand_in = tiny_model(Path(tmp) / "tiny.onnx"), True
    parts = make_parts(args.spec, args.parts, args.size)
    inspector = Inspector(model, threads=args.threads)
    proc, url = start_server(model, args.threads, args.workers, str(Path(tmp) / "data"))
    levels = [int(c) for c in args.concurrency.split(",")]
    rows = []
    failed_total = 0
    try:
        asyncio.run(_run_http(url, parts, args.spec, max(4, args.workers), max(2, args.workers)))  # warm up
        run_inprocess(inspector, parts, args.spec, max(4, args.workers), 2)
        n = max(1, args.requests // args.rounds)
        for c in levels:
            acc = {"in-process": [0.0, [], 0], "REST": [0.0, [], 0]}
            for _ in range(args.rounds):  # alternate, so load from elsewhere on the machine hits both alike
                for name, fn in (("in-process", lambda c=c: run_inprocess(inspector, parts, args.spec, n, c)),
                                 ("REST", lambda c=c: asyncio.run(_run_http(url, parts, args.spec, n, c)))):
                    wall, lat, failed = fn()
                    acc[name][0] += wall
                    acc[name][1] += lat
                    acc[name][2] += failed
            for name, (wall, lat, failed) in acc.items():
                failed_total += failed
                rows.append((c, name, len(lat) / wall, pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3, failed))
    finally:
        proc.terminate()
        proc.wait(60)
    what = f"{inspector.model_ref.name} ({'tiny stand-in: the bundled model is absent' if stand_in else model.name})"
    print(f"# REST vs in-process, {n * args.rounds} requests per level and side ({args.rounds} alternating rounds), "
          f"{args.parts} parts x 2 views at "
          f"{args.size}x{args.size}, model {what}")
    print(f"# onnxruntime threads {args.threads}, service workers {args.workers}, SQLite record store (WAL, "
          f"synchronous=FULL); {platform.machine()}, {os.cpu_count()} logical CPUs, {time.strftime('%Y-%m-%d')}")
    print("| concurrency | side | parts/s | p50 ms | p99 ms | failed | REST / in-process |")
    print("|---|---|---|---|---|---|---|")
    for i, (c, name, tput, p50, p99, failed) in enumerate(rows):
        ratio = f"{tput / rows[i - 1][2]:.0%}" if name == "REST" else ""
        print(f"| {c} | {name} | {tput:.2f} | {p50:.0f} | {p99:.0f} | {failed} | {ratio} |")
    if failed_total:
        print(f"\n{failed_total} requests failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
