"""The station and the service load the model promoted in the registry (issue 8)."""

import pytest

from magspect.inspect.backend import bundled_model_path
from magspect.models.registry import ModelRegistry

pytestmark = pytest.mark.skipif(not bundled_model_path().is_file(), reason="bundled model not present")


@pytest.fixture
def registry(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path / "models")
    v = reg.register(bundled_model_path(), int8_path=bundled_model_path(int8=True), notes="test")
    reg.promote(v.version, force=True, reason="test")
    monkeypatch.setenv("MAGSPECT_MODELS", str(reg.root))
    return reg


def test_station_model_kind_promoted(registry, tmp_path):
    from magspect.edge._config import StationConfig, build_station

    cfg = StationConfig.model_validate({
        "spec": "def-blk-20x10x5-nicuni",
        "camera": {"kind": "sim", "n_parts": 1, "size_px": 256, "prerender": 1},
        "model": {"kind": "promoted", "registry": str(registry.root), "int8": True, "threads": 1},
        "records": {"enabled": False},
        "opcua": {"enabled": False},
    })
    station = build_station(cfg)  # inspections in worker processes (the default): they report their model
    try:
        sha = station.inspector.model_ref.sha256
    finally:
        station.inspector.close()
    from magspect.inspect.backend import sha256_file

    assert sha == sha256_file(registry.promoted().int8_path)


def test_station_refuses_promoted_when_nothing_is_promoted(tmp_path):
    from magspect.edge._config import StationConfig, build_station

    cfg = StationConfig.model_validate({
        "spec": "def-blk-20x10x5-nicuni",
        "camera": {"kind": "sim", "n_parts": 1, "size_px": 256, "prerender": 1},
        "model": {"kind": "promoted", "registry": str(tmp_path / "empty")},
        "records": {"enabled": False},
        "opcua": {"enabled": False},
    })
    with pytest.raises(ValueError, match="no model is promoted"):
        build_station(cfg)


def test_service_loads_the_promoted_model(registry, tmp_path):
    import time

    from fastapi.testclient import TestClient

    from magspect.inspect.backend import sha256_file
    from magspect.serve.app import create_app
    from magspect.serve.settings import ServeSettings

    settings = ServeSettings(model="promoted", int8=False, data_dir=tmp_path / "data", threads=1)
    with TestClient(create_app(settings)) as client:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        body = client.get("/v1/models").text
    assert sha256_file(registry.promoted().onnx_path) in body


@pytest.mark.parametrize(("model_cfg", "verified", "band"), [
    ({}, True, "manifest"),  # the bundled verifier and its own review band
    ({"review_below": 0}, True, None),  # a line with nobody to review: no band
    ({"review_below": 0.2}, True, 0.2),  # above the bundled keep threshold (0.08)
    ({"verifier": "none"}, False, None),
])
def test_station_verifier_and_review_band_from_config(model_cfg, verified, band):
    from magspect.edge._config import StationConfig, build_station

    cfg = StationConfig.model_validate({
        "spec": "def-blk-20x10x5-nicuni",
        "camera": {"kind": "sim", "n_parts": 1, "size_px": 256, "prerender": 1},
        "model": {"kind": "bundled", "threads": 1, **model_cfg},
        "records": {"enabled": False},
        "opcua": {"enabled": False},
    })
    if band == "manifest":
        from magspect.inspect.verifier import Verifier, bundled_verifier_path

        band = Verifier(bundled_verifier_path()).manifest.review_below
        assert band is not None and band not in (0.2,)
    station = build_station(cfg)  # in worker processes (the default): the settings must reach them
    try:
        assert (station.inspector.verifier_ref is not None) == verified
        assert station.inspector.verifier_review_below == band
    finally:
        station.inspector.close()


@pytest.mark.parametrize(("subtypes", "expected"), [(None, "bundled"), ("none", None)])
def test_station_subtype_classifier_from_config(subtypes, expected):
    from magspect.edge._config import StationConfig, build_station
    from magspect.inspect.subtype import SubtypeClassifier, bundled_subtypes_path

    cfg = StationConfig.model_validate({
        "spec": "def-blk-20x10x5-nicuni",
        "camera": {"kind": "sim", "n_parts": 1, "size_px": 256, "prerender": 1},
        "model": {"kind": "bundled", "threads": 1, **({} if subtypes is None else {"subtypes": subtypes})},
        "records": {"enabled": False},
        "opcua": {"enabled": False},
    })
    station = build_station(cfg)  # in worker processes (the default): the setting must reach them
    try:
        ref = station.inspector.subtypes_ref
        if expected is None:
            assert ref is None
        else:
            assert ref is not None and ref.sha256 == SubtypeClassifier(bundled_subtypes_path()).sha256
    finally:
        station.inspector.close()
