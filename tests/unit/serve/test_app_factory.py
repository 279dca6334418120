import json
import subprocess
import sys

import pytest


def _run(code: str, env_extra: dict | None = None, cwd=None) -> dict:
    import os

    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_creates_nothing_and_never_loads_torch(tmp_path):
    code = """
import json, sys
import magspect.serve, magspect.serve.app, magspect.store, magspect.cli.serve
app = magspect.serve.create_app(inspector=__import__("magspect.serve.testing", fromlist=["x"]).FakeInspector())
print(json.dumps({"torch": "torch" in sys.modules, "engine": hasattr(app.state, "service")}))
"""
    # a bogus database URL: import and create_app must not touch it (the store opens at startup)
    res = _run(code, {"MAGSPECT_DB_URL": "postgresql+psycopg://x:y@127.0.0.1:1/none",
                      "XDG_DATA_HOME": str(tmp_path)}, cwd=tmp_path)
    assert res == {"torch": False, "engine": False}
    assert not any(tmp_path.rglob("*.db"))


def test_settings_from_env(monkeypatch, tmp_path):
    from magspect.serve import ServeSettings

    monkeypatch.setenv("MAGSPECT_WORKERS", "3")
    monkeypatch.setenv("MAGSPECT_PROVIDERS", "cuda, cpu")
    monkeypatch.setenv("MAGSPECT_DATA_DIR", str(tmp_path))
    s = ServeSettings()
    assert s.workers == 3 and s.providers == ["cuda", "cpu"] and s.data_dir == tmp_path
    assert ServeSettings(workers=5).workers == 5
    assert s.tta == "none"
    monkeypatch.setenv("MAGSPECT_TTA", "hflip")
    assert ServeSettings().tta == "hflip"
    monkeypatch.setenv("MAGSPECT_TTA", "rot90")
    with pytest.raises(ValueError, match="tta"):
        ServeSettings()


def test_service_loads_the_verifier_it_is_given(tmp_path):
    """MAGSPECT_VERIFIER / --verifier: a verifier file (e.g. one re-tuned for a station), 'darkfield'
    (the bundled one for a dark-field station), 'none', or unset for the bundled one."""
    from magspect.inspect.backend import sha256_file
    from magspect.inspect.verifier import bundled_verifier_path
    from magspect.serve import ServeSettings
    from magspect.serve._metrics import Metrics
    from magspect.serve._service import Service

    if not bundled_verifier_path().is_file():
        pytest.skip("no bundled verifier in this checkout")
    refs = {}
    for name, value in (("bundled", None), ("file", str(bundled_verifier_path())), ("none", "none"),
                        ("darkfield", "darkfield")):
        svc = Service(ServeSettings(verifier=value, data_dir=tmp_path, workers=1), store=None, queue=None,
                      metrics=Metrics())
        svc.load_inspector()
        assert svc.load_error is None, svc.load_error
        refs[name] = svc.inspector.verifier_ref
    assert refs["none"] is None
    assert refs["file"] == refs["bundled"] and refs["file"].sha256
    assert refs["darkfield"].sha256 == sha256_file(bundled_verifier_path("darkfield")) != refs["bundled"].sha256
    svc = Service(ServeSettings(verifier=str(tmp_path / "missing.onnx"), data_dir=tmp_path, workers=1), store=None,
                  queue=None, metrics=Metrics())
    svc.load_inspector()
    assert svc.inspector is None and "missing.onnx" in svc.load_error
