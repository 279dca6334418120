"""Store fixtures: SQLite always; PostgreSQL when MAGSPECT_TEST_PG_URL is set or a local server answers."""

import os
import uuid

import pytest

from magspect.types import Defect, InspectionResult, Measurement, ModelRef, Reason, SpecRef, Verdict

_LOCAL_PG = "postgresql+psycopg://magspect:magspect@127.0.0.1:5432/magspect_test"


def pg_url() -> tuple[str | None, str]:
    """A PostgreSQL URL to test against, or None and why not."""
    url = os.environ.get("MAGSPECT_TEST_PG_URL")
    candidates = [url] if url else [_LOCAL_PG]
    try:
        import psycopg  # noqa: F401
        from sqlalchemy import create_engine
    except ImportError:
        return None, "psycopg is not installed (pip install 'magspect[serve]')"
    for u in candidates:
        try:
            eng = create_engine(u.replace("postgresql://", "postgresql+psycopg://", 1),
                                connect_args={"connect_timeout": 2})
            with eng.connect():
                pass
            eng.dispose()
            return u, ""
        except Exception as exc:  # noqa: BLE001
            if url:  # asked for explicitly: a failure to connect is a test failure, not a skip
                pytest.fail(f"MAGSPECT_TEST_PG_URL={url} does not answer: {exc}")
            reason = str(exc).splitlines()[0]
    return None, f"no PostgreSQL: MAGSPECT_TEST_PG_URL unset and none at {_LOCAL_PG} ({reason}); .ci/run sets one up"


def _pg_schema(url: str, schema: str, create: bool) -> str:
    """Create (or drop) a private schema; returns a URL whose connections use it (parallel runs stay apart)."""
    from sqlalchemy import create_engine, text

    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}" if create else f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    eng.dispose()
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_factory(request, tmp_path):
    """Makes RecordStores on one database (a fresh one per test)."""
    from magspect.store import RecordStore

    url = base = schema = None
    if request.param == "postgresql":
        base, why = pg_url()
        if base is None:
            pytest.skip(why)
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url = _pg_schema(base, schema, create=True)
    made = []

    def make(**kw):
        s = RecordStore(url, data_dir=tmp_path / "data", **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
    if schema:
        _pg_schema(base, schema, create=False)


@pytest.fixture
def store(store_factory):
    return store_factory()


@pytest.fixture
def make_result():
    return _make_result


def _make_result(verdict=Verdict.PASS, *, spec="com-blk-20x10x5-zn", length=20.01, defects=0, error=None, part_id="P1"):
    reasons = ()
    if verdict != Verdict.PASS:
        reasons = (Reason(rule="defect.chip.edge.max_depth_mm", verdict=verdict,
                          message="chip on edge 3: depth 0.42 mm", measured=0.42, limit=0.3),)
    return InspectionResult(
        part_id=part_id,
        verdict=verdict,
        reasons=reasons,
        defects=tuple(Defect(class_name="chip", zone="edge", length_mm=1.0 + i, width_mm=0.2, depth_mm=0.42,
                             area_mm2=0.1, edge_index=3) for i in range(defects)),
        measurements={"length": Measurement(name="length", value=length, nominal=20.0, tol_minus=0.05, tol_plus=0.05,
                                            uncertainty=0.01, status="ok", view="top")},
        spec=SpecRef(id=spec, version=1),
        model=ModelRef(name="unet-fp32", sha256="ab" * 32, provider="CPUExecutionProvider"),
        calibration_id="cal-7",
        views=("top",),
        timings_ms={"total": 12.5, "model": 8.0},
        error=error,
    )
