"""Serve fixtures: apps over the FakeInspector and a SQLite store in tmp_path."""

import pytest
from fastapi.testclient import TestClient

from magspect.serve import ServeSettings, create_app
from magspect.serve.testing import FakeInspector, part_png

SPEC = "com-blk-20x10x5-zn"


@pytest.fixture
def settings(tmp_path):
    return ServeSettings(data_dir=tmp_path / "data", _env_file=None)


@pytest.fixture
def make_client(settings):
    """``make_client(inspector=..., **setting_overrides)`` -> a started TestClient."""
    opened = []

    def make(inspector=None, store=None, **overrides):
        s = settings.model_copy(update=overrides)
        app = create_app(s, inspector=inspector if inspector is not None else FakeInspector(), store=store)
        c = TestClient(app)
        c.__enter__()
        opened.append(c)
        return c

    yield make
    for c in opened:
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def post_part(client, *, defect=False, top=None, side=None, spec=SPEC, headers=None, **form):
    files = {}
    if top is not False:
        files["top"] = ("top.png", top if top is not None else part_png(defect), "image/png")
    if side is not None:
        files["side"] = ("side.png", side, "image/png")
    data = {"um_per_px": "25", **form}
    if spec is not None:
        data["spec"] = spec
    return client.post("/v1/inspections", files=files or None, data=data, headers=headers or {})


@pytest.fixture
def post():
    return post_part
