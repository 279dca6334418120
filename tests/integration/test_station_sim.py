"""The simulated line end to end with known truth: generator -> station -> Inspector (truth masks as
the model) -> reject gate -> record store. Counts reconcile and no nonconforming part passes."""

import subprocess
import sys

import pytest

from magspect.edge import StationConfig, build_station
from magspect.store import RecordStore
from magspect.types import Verdict

SPEC = "def-blk-20x10x5-nicuni"


def _cfg(tmp_path, **camera):
    cam = {"kind": "sim", "rate_hz": 8, "n_parts": 12, "size_px": 256, "prerender": 6, "defect_rate": 0.5,
           "out_of_tolerance_rate": 0.2, "seed": 11, "lanes": 2, **camera}
    return StationConfig(spec=SPEC, model={"kind": "truth"}, camera=cam, deadline_ms=4000,
                         records={"data_dir": tmp_path / "data"}, meta={"inspection_lot": "IL-7"})


def test_simulated_line_with_truth_model(tmp_path):
    decisions = []
    st = build_station(_cfg(tmp_path), on_record=decisions.append)
    st.start()
    assert st.wait_source_done(60)
    st.stop(timeout_s=60)
    c = st.counters
    assert c.acquired == 12 == c.inspected + c.fail_safe
    assert c.fail_safe == 0, "a 4 s deadline at 8 parts/s of 256 px parts must be met"
    assert c.recorded == 12 and c.record_errors == 0
    assert len(decisions) == 12 and len({d.serial for d in decisions}) == 12
    nonconforming = [d for d in decisions if not d.truth["conforming"]]
    conforming = [d for d in decisions if d.truth["conforming"]]
    assert nonconforming and conforming, "the seeded line must give both kinds"
    for d in nonconforming:  # the (perfect) model sees every defect: the part must be taken off the line
        assert d.reject, (d.serial, d.truth["reasons"], d.result.verdict)
    assert sum(not d.reject for d in conforming) >= len(conforming) // 2, "most good parts should pass"
    assert {d.lane for d in decisions} == {"1", "2"}
    with RecordStore(data_dir=tmp_path / "data") as store:
        assert store.count() == 12
        for d in decisions:
            rec = store.get(d.record_id)
            assert rec.meta.serial == d.serial and rec.meta.station == "station-1"
            assert rec.meta.inspection_lot == "IL-7"
            assert rec.result.verdict == d.result.verdict
            if d.result.verdict == Verdict.REJECT:
                assert rec.kept_images == ("side", "top")  # images of rejected parts kept


def test_station_config_lighting(tmp_path):
    """``camera.lighting`` reaches the simulated line: every decision's part was imaged under it; a
    light that shows no surface is refused when the config is read."""
    decisions = []
    st = build_station(_cfg(tmp_path, n_parts=4, prerender=2, lanes=1, lighting="coaxial"),
                       on_record=decisions.append)
    st.start()
    assert st.wait_source_done(60)
    st.stop(timeout_s=60)
    assert len(decisions) == 4
    assert all(d.truth["lighting"] == {"top": "coaxial", "side": "coaxial"} for d in decisions)
    with pytest.raises(ValueError, match="lighting"):
        _cfg(tmp_path, lighting="backlight")


def test_station_package_never_imports_torch():
    code = ("import sys, magspect.edge, magspect.cli.station, magspect.edge._opcua, magspect.edge._records; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("processes", [0, None])
def test_simulated_line_with_the_bundled_model(tmp_path, processes):
    """In the station's process (threads, ``model.processes: 0``) and in worker processes (unset: as
    many as ``workers``, 2): every part inspected by the bundled model, recorded, and rejected where
    the model's verdict says so. The worker-process line is a dark-field station: ``camera.lighting:
    darkfield`` with ``model.verifier: darkfield``, the bundled verifier trained for that light."""
    from magspect.inspect import bundled_model_path
    from magspect.inspect.backend import sha256_file
    from magspect.inspect.procpool import ProcessInspector
    from magspect.inspect.verifier import bundled_verifier_path

    if not bundled_model_path(int8=False).is_file():
        pytest.skip("the bundled model (src/magspect/models/weights/default.onnx) is missing")
    light = "darkfield" if processes is None else None
    cfg = _cfg(tmp_path, n_parts=4, size_px=512, rate_hz=1, prerender=2, lighting=light)
    model = type(cfg.model).model_validate({"kind": "bundled", "threads": 2 if processes == 0 else 1,
                                            "processes": processes, "verifier": light})
    assert model.verifier == light  # the name, not a file path
    cfg = cfg.model_copy(update={"model": model, "deadline_ms": 60000})
    decisions = []
    st = build_station(cfg, on_record=decisions.append)
    assert isinstance(st.inspector, ProcessInspector) == (processes is None)
    assert st.inspector.verifier_ref.sha256 == sha256_file(bundled_verifier_path(light))
    if processes is None:
        assert st.inspector.processes == cfg.workers == 2
    st.start()
    assert st.wait_source_done(120)
    st.stop(timeout_s=120)
    c = st.counters
    assert c.acquired == 4 == c.inspected + c.fail_safe == c.recorded
    assert c.fail_safe == 0 and st.snapshot()["worker_restarts"] == 0
    for d in decisions:
        assert d.result.model.name == "unet_mnv3s_lite-fp32" and d.result.error is None
        if any(r.verdict == Verdict.REJECT for r in d.result.reasons):  # what the model caught is rejected
            assert d.reject
    if processes is None:  # stop() closed the worker processes the station built
        with pytest.raises(RuntimeError, match="closed"):
            st.inspector.inspect({})


def test_truth_model_cannot_run_in_worker_processes_or_with_tta(tmp_path):
    cfg = _cfg(tmp_path)
    for change, message in (({"processes": 2}, "processes to 0"), ({"tta": "hflip"}, "tta to none")):
        bad = cfg.model_copy(update={"model": cfg.model.model_copy(update=change)})
        with pytest.raises(ValueError, match=message):
            build_station(bad)


def test_a_station_that_fails_to_build_closes_its_worker_processes(tmp_path, monkeypatch):
    """Worker processes started for a station whose build then fails (records, outputs) are closed,
    not left running in an application that goes on."""
    import magspect.edge._config as config
    import magspect.inspect.procpool as procpool

    closed = []

    class FakePool:
        def __init__(self, settings, processes):
            self.processes = processes

        def close(self):
            closed.append(self.processes)

    def broken(*_a, **_k):
        raise OSError("record store unavailable")

    monkeypatch.setattr(procpool, "ProcessInspector", FakePool)
    monkeypatch.setattr(config, "_finish_station", broken)
    cfg = _cfg(tmp_path)
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"kind": "bundled"})})
    with pytest.raises(OSError, match="record store"):
        build_station(cfg)
    assert closed == [2]
