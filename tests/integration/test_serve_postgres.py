"""The service over a PostgreSQL record store (MAGSPECT_TEST_PG_URL, or a local server; else skipped)."""

import os
import uuid

import pytest
from fastapi.testclient import TestClient

from magspect.serve import ServeSettings, create_app
from magspect.serve.testing import FakeInspector, part_png

LOCAL = "postgresql+psycopg://magspect:magspect@127.0.0.1:5432/magspect_test"


@pytest.fixture
def pg_url():
    pytest.importorskip("psycopg")
    from sqlalchemy import create_engine, text

    url = os.environ.get("MAGSPECT_TEST_PG_URL") or LOCAL
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    eng = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with eng.connect():
            pass
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("MAGSPECT_TEST_PG_URL"):
            pytest.fail(f"MAGSPECT_TEST_PG_URL does not answer: {exc}")
        pytest.skip(f"no PostgreSQL (MAGSPECT_TEST_PG_URL unset, none at {LOCAL}); .ci/run sets one up")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
    with eng.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    eng.dispose()


def test_service_on_postgresql(pg_url, tmp_path):
    settings = ServeSettings(db_url=pg_url, data_dir=tmp_path)
    with TestClient(create_app(settings, inspector=FakeInspector())) as client:
        ids = []
        for i in range(3):
            r = client.post("/v1/inspections", files={"top": ("t.png", part_png(i == 1), "image/png")},
                            data={"spec": "com-blk-20x10x5-zn", "um_per_px": "25", "sinter_lot": "S-PG",
                                  "serial": f"PG{i}"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        assert client.app.state.service.store.dialect == "postgresql"
        page = client.get("/v1/inspections", params={"lot": "S-PG"}).json()
        assert page["total"] == 3 and [x["id"] for x in page["items"]] == ids[::-1]
        assert client.get("/v1/inspections", params={"verdict": "REJECT"}).json()["items"][0]["id"] == ids[1]
        assert client.get(f"/v1/inspections/{ids[1]}/overlay.png").status_code == 200
        assert client.get("/readyz").json()["store_ok"] is True
