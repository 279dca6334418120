"""Two magspect models as one ONNX file whose logits are the mean of theirs (an ensemble the
Inspector runs as it runs any model; twice the model's time).

    .venv/bin/python benchmarks/ensemble_onnx.py A.onnx B.onnx --out AB.onnx

The models must agree on classes, input, preprocessing and output stride; the first one's manifest
is written into the result (model name + "+ensemble"). Then, as for any new model file: `magspect
calibrate-sizing`, `tune-verifier` / `tune-subtypes --also-for`, `magspect evaluate`. Needs the
``train`` extra (onnx).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def ensemble(a_path: Path, b_path: Path, out: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import compose, helper, numpy_helper

    from magspect.models.manifest import Manifest
    from magspect.training.export import embed_manifest

    ma, mb = Manifest.from_onnx(a_path), Manifest.from_onnx(b_path)
    for field in ("classes", "in_channels", "preprocess", "output_stride"):
        if getattr(ma, field) != getattr(mb, field):
            raise ValueError(f"the models differ in {field}: {getattr(ma, field)} vs {getattr(mb, field)}")
    a = compose.add_prefix(onnx.load(str(a_path)), "a_")
    b = compose.add_prefix(onnx.load(str(b_path)), "b_")
    inp, outp = ma.input.name, ma.output.name
    nodes = [helper.make_node("Identity", [inp], [f"a_{inp}"]), helper.make_node("Identity", [inp], [f"b_{inp}"]),
             *a.graph.node, *b.graph.node,
             helper.make_node("Add", [f"a_{outp}", f"b_{outp}"], ["ensemble_sum"]),
             helper.make_node("Mul", ["ensemble_sum", "ensemble_half"], [outp])]
    g = helper.make_graph(
        nodes, "ensemble",
        [helper.make_tensor_value_info(inp, onnx.TensorProto.FLOAT, ["N", ma.in_channels, "H", "W"])],
        [helper.make_tensor_value_info(outp, onnx.TensorProto.FLOAT, ["N", len(ma.classes), "h", "w"])],
        [*a.graph.initializer, *b.graph.initializer,
         numpy_helper.from_array(np.array(0.5, np.float32), "ensemble_half")],
    )
    m = helper.make_model(g, opset_imports=a.opset_import)
    m.ir_version = a.ir_version
    onnx.checker.check_model(m)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(m, str(out))
    return embed_manifest(out, ma.model_copy(update={"model_name": f"{ma.model_name}+ensemble"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    try:
        print("wrote", ensemble(args.a, args.b, args.out))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
