"""Inspections in worker processes (the station's ``model.processes``): the same result as in-process,
fail-closed when a worker dies or cannot start."""

from __future__ import annotations

import os
import time

import pytest

from magspect.datasets import FRONT_LIGHTINGS, SynthConfig, generate_part
from magspect.inspect import Inspector, bundled_model_path
from magspect.inspect.procpool import InspectorSettings, ProcessInspector, WorkerDiedError

SPEC = "def-blk-20x10x5-nicuni"

pytestmark = pytest.mark.skipif(not bundled_model_path().is_file(), reason="the bundled model is missing")


@pytest.fixture(scope="module")
def part():
    p = generate_part(spec=SPEC, seed=3, config=SynthConfig(backlight=True, lighting=FRONT_LIGHTINGS, size_px=512))
    return ({v: rv.image for v, rv in p.views.items()},
            {"spec": SPEC, "um_per_px": {v: rv.truth["um_per_px"] for v, rv in p.views.items()},
             "backlights": {v: rv.backlight for v, rv in p.views.items()}})


@pytest.fixture(scope="module")
def pool():
    with ProcessInspector(InspectorSettings(threads=1), processes=2) as pi:
        yield pi


def test_workers_start_with_the_model_and_judge_as_in_process(pool, part):
    views, kw = part
    assert len({w["pid"] for w in pool.workers}) == 2 and os.getpid() not in {w["pid"] for w in pool.workers}
    assert {w["model_sha256"] for w in pool.workers} == {Inspector(threads=1).segmenter.sha256}
    assert all(w["verifier_ref"] for w in pool.workers)  # the bundled verifier fits the bundled model
    local = Inspector(threads=1)
    assert pool.model_ref == local.model_ref and pool.verifier_ref == local.verifier_ref
    assert pool.verifier_review_below == local.verifier_review_below
    got, want = pool.inspect(views, **kw), Inspector(threads=1).inspect(views, **kw)
    assert got.error is None and got.verdict == want.verdict
    assert [(d.class_name, round(d.length_mm, 4)) for d in got.defects] == [
        (d.class_name, round(d.length_mm, 4)) for d in want.defects]
    assert {k: m.value for k, m in got.measurements.items()} == {k: m.value for k, m in want.measurements.items()}


def test_a_worker_that_dies_fails_its_part_and_the_pool_comes_back(part):
    views, kw = part
    with ProcessInspector(InspectorSettings(threads=1), processes=1) as pi:
        os.kill(pi.workers[0]["pid"], 9)
        time.sleep(0.3)
        with pytest.raises(WorkerDiedError, match="part not judged"):
            pi.inspect(views, **kw)
        assert pi.restarts == 1
        assert pi.inspect(views, **kw).error is None  # the next part is inspected by a new worker
    with pytest.raises(RuntimeError, match="closed"):
        pi.inspect(views, **kw)


def test_a_worker_that_cannot_build_its_inspector_stops_the_start(tmp_path):
    with pytest.raises(RuntimeError, match=r"could not build their Inspector: .*nope\.onnx"):
        ProcessInspector(InspectorSettings(model=tmp_path / "nope.onnx"), processes=1)
    with pytest.raises(ValueError, match="processes"):
        ProcessInspector(InspectorSettings(), processes=0)


def test_workers_outlive_the_signals_of_a_graceful_stop(pool, part):
    """Ctrl-C or a service manager's SIGTERM reach the whole process group; the station drains its
    parts before closing the pool, so the workers must not die first."""
    import signal

    views, kw = part
    for w in pool.workers:
        os.kill(w["pid"], signal.SIGINT)
        os.kill(w["pid"], signal.SIGTERM)
    time.sleep(0.3)
    assert pool.inspect(views, **kw).error is None and pool.restarts == 0
