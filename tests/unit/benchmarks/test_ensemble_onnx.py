"""``benchmarks/ensemble_onnx.py``: the ensemble file's logits are the mean of its two models', it
carries the first one's manifest, and models that disagree on their classes are refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_path = Path(__file__).parents[3] / "benchmarks" / "ensemble_onnx.py"
_spec = importlib.util.spec_from_file_location("ensemble_onnx", _path)
ens = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ens)


def test_logits_are_the_mean_and_the_manifest_is_the_first_models(tmp_path, build_const):
    import onnxruntime as ort

    from magspect.inspect.backend import Segmenter

    a = build_const(tmp_path / "a.onnx", good_surface_logit=4.0)
    b = build_const(tmp_path / "b.onnx", good_surface_logit=1.0)
    out = ens.ensemble(a, b, tmp_path / "e" / "ab.onnx")
    x = np.random.default_rng(0).random((2, 1, 32, 48), dtype=np.float32)
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(out), (run(a) + run(b)) / 2, atol=1e-6)
    assert run(out)[0, 1, 0, 0] == pytest.approx(2.5)
    seg = Segmenter(out, warmup=False)  # the runtime opens it as any model
    assert seg.manifest.model_name == "const+ensemble"


def test_models_with_other_classes_are_refused(tmp_path, monkeypatch, build_const):
    from magspect.models.manifest import Manifest

    a = build_const(tmp_path / "a.onnx")
    b = build_const(tmp_path / "b.onnx")
    real = Manifest.from_onnx

    def fake(path):  # noqa: ANN001
        m = real(path)
        return m.model_copy(update={"classes": list(reversed(m.classes))}) if Path(path) == b else m

    monkeypatch.setattr(Manifest, "from_onnx", staticmethod(fake))
    with pytest.raises(ValueError, match="differ in classes"):
        ens.ensemble(a, b, tmp_path / "ab.onnx")
