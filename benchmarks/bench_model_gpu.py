"""Defect model speed on a GPU: PyTorch eager (FP32, FP16) and onnxruntime's CUDA and TensorRT
execution providers (FP32, FP16), side by side. Needs ``onnxruntime-gpu`` (extra ``gpu``) and a
CUDA build of torch; TensorRT rows need the TensorRT libraries and are skipped without them.

    python benchmarks/bench_model_gpu.py --size 1024 --batch 1 --repeats 50
    python benchmarks/bench_model_gpu.py --batch 8 --no-tensorrt

The CUDA EP FP16 row converts the FP32 ONNX with ``onnxruntime.transformers.float16`` (inputs
and outputs kept FP32, so the manifest's preprocessing is unchanged). Times are per batch and per
image, with device synchronisation, after --warmup runs (TensorRT builds its engine on the first).
The onnxruntime rows time the graph only: a model whose manifest says ``output_stride: 2`` leaves
its logits at half size there, and the runtime's upsampling (on the CPU,
``magspect.models.manifest.full_resolution_logits``) is not in these rows; the script prints it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from magspect.models import DEFAULT_MODEL_PATH
from magspect.models.manifest import Manifest


def _ort(path: Path, providers: list):  # noqa: ANN202
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=providers)


def _time(fn, warmup: int, repeats: int) -> list[float]:  # noqa: ANN001
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, default=DEFAULT_MODEL_PATH)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--no-tensorrt", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()

    import onnxruntime as ort

    manifest = Manifest.from_onnx(args.onnx)
    x = np.random.default_rng(0).random((args.batch, manifest.in_channels, args.size, args.size), dtype=np.float32)
    available = ort.get_available_providers()
    print(f"# onnxruntime {ort.__version__}, providers {available}")
    rows: dict[str, list[float]] = {}

    if not args.no_torch:
        import torch

        from magspect.models import create_model

        if torch.cuda.is_available():
            print(f"# {torch.cuda.get_device_name(0)}")
            model = create_model(manifest.model_name, in_chans=manifest.in_channels, **manifest.model_kwargs)
            model = model.cuda().eval()
            xt = torch.from_numpy(x).cuda()

            def run(half: bool) -> None:
                with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=half):
                    model(xt)
                torch.cuda.synchronize()

            rows["pytorch eager fp32"] = _time(lambda: run(False), args.warmup, args.repeats)
            rows["pytorch eager fp16 (autocast)"] = _time(lambda: run(True), args.warmup, args.repeats)
        else:
            print("# torch: no CUDA device, PyTorch rows skipped")

    def ort_rows(name: str, path: Path, providers: list) -> None:
        try:
            sess = _ort(path, providers)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other rows
            print(f"# {name}: skipped ({type(exc).__name__}: {str(exc)[:120]})")
            return
        if sess.get_providers()[0] != (providers[0] if isinstance(providers[0], str) else providers[0][0]):
            print(f"# {name}: skipped (fell back to {sess.get_providers()[0]})")
            return
        io = sess.io_binding()
        io.bind_cpu_input("image", x)
        io.bind_output("logits", "cuda")
        rows[name] = _time(lambda: sess.run_with_iobinding(io), args.warmup, args.repeats)

    if "CUDAExecutionProvider" in available:
        ort_rows("onnxruntime CUDA fp32", args.onnx, ["CUDAExecutionProvider"])
        import onnx
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with tempfile.TemporaryDirectory() as tmp:
            fp16 = Path(tmp) / "fp16.onnx"
            onnx.save(convert_float_to_float16(onnx.load(str(args.onnx)), keep_io_types=True), str(fp16))
            ort_rows("onnxruntime CUDA fp16", fp16, ["CUDAExecutionProvider"])
        if not args.no_tensorrt and "TensorrtExecutionProvider" in available:
            with tempfile.TemporaryDirectory() as cache:
                for half in (False, True):
                    opts = {"trt_fp16_enable": half, "trt_engine_cache_enable": True, "trt_engine_cache_path": cache}
                    ort_rows(
                        f"onnxruntime TensorRT {'fp16' if half else 'fp32'}",
                        args.onnx,
                        [("TensorrtExecutionProvider", opts), "CUDAExecutionProvider"],
                    )
    else:
        print("# onnxruntime: no CUDAExecutionProvider (pip install 'magspect[gpu]')")

    if manifest.output_stride != 1:
        print(f"# logits leave the graph at stride {manifest.output_stride}: the runtime's CPU upsampling is not "
              "in the onnxruntime rows")
    print(f"# input {args.batch}x{manifest.in_channels}x{args.size}x{args.size}, {args.repeats} runs")
    print(f"{'backend':<32} {'ms/batch':>9} {'ms/image':>9}")
    for name, ts in rows.items():
        med = statistics.median(ts)
        print(f"{name:<32} {med:>9.2f} {med / args.batch:>9.2f}")


if __name__ == "__main__":
    main()
