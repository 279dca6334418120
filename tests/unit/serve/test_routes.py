import cv2
import numpy as np
import pytest

from magspect.serve.testing import FakeInspector, part_png
from magspect.specs import list_specs

SPEC = "com-blk-20x10x5-zn"


def assert_error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "request_id"} and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def test_inspect_a_good_part(client, post):
    r = post(client, serial="SN-1", melt_lot="M-1", sinter_lot="S-1", station="lab")
    assert r.status_code == 201, r.text
    rec = r.json()
    assert r.headers["location"] == f"/v1/inspections/{rec['id']}"
    assert rec["result"]["verdict"] == "PASS" and rec["result"]["spec"]["id"] == SPEC
    assert rec["result"]["model"]["name"] == "fake-fp32"
    assert rec["meta"]["serial"] == "SN-1" and rec["meta"]["melt_lot"] == "M-1" and rec["meta"]["station"] == "lab"
    assert rec["kept_images"] == []
    assert rec["result"]["measurements"]["length"]["value_mm"] == 20.0  # computed fields survive the record
    assert client.get(f"/v1/inspections/{rec['id']}").json() == rec
    assert client.get("/v1/inspections").json()["items"] == [rec]


def test_a_rejected_part_keeps_its_images_and_has_an_overlay(client, post):
    r = post(client, defect=True, serial="SN-2")
    rec = r.json()
    assert rec["result"]["verdict"] == "REJECT" and rec["result"]["defects"][0]["class_name"] == "crack"
    assert rec["kept_images"] == ["top"]
    o = client.get(f"/v1/inspections/{rec['id']}/overlay.png")
    assert o.status_code == 200 and o.headers["content-type"] == "image/png"
    img = cv2.imdecode(np.frombuffer(o.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[:2] == (128, 128)
    # the crack is drawn in the crack colour (red, BGR)
    assert ((img[..., 2] > 200) & (img[..., 0] < 80) & (img[..., 1] < 80)).any()


def test_overlay_from_disk_for_rejects_only_when_not_in_memory(make_client, post):
    client = make_client(overlay_cache=0)
    bad = post(client, defect=True).json()
    good = post(client).json()
    assert client.get(f"/v1/inspections/{bad['id']}/overlay.png").status_code == 200
    r = client.get(f"/v1/inspections/{good['id']}/overlay.png")
    assert r.status_code == 404 and r.json()["error"]["code"] == "overlay_not_available"
    r = client.get(f"/v1/inspections/{bad['id']}/overlay.png", params={"view": "side"})
    assert r.status_code == 404


def test_overlay_memory_is_bounded(make_client, post):
    client = make_client(overlay_cache=100, overlay_cache_mb=0.05)  # 128x128 image + mask = 32 kB a part
    ids = [post(client).json()["id"] for _ in range(4)]
    service = client.app.state.service
    assert [service.recent_overlay(i) is not None for i in ids] == [False, False, False, True]
    assert service._overlay_bytes <= 0.05 * 2**20


def test_both_views_and_per_view_scale_reach_the_inspector(make_client, post):
    seen = {}

    class Spy(FakeInspector):
        def inspect_detailed(self, views, **kw):
            seen.update(kw, views=sorted(views))
            return super().inspect_detailed(views, **kw)

    client = make_client(inspector=Spy())
    r = post(client, side=part_png(), um_per_px_top="20", um_per_px_side="30", serial="SN-9")
    assert r.status_code == 201
    assert seen["views"] == ["side", "top"] and seen["um_per_px"] == {"top": 20.0, "side": 30.0}
    assert seen["spec"] == SPEC and seen["part_id"] == "SN-9"
    assert r.json()["result"]["views"] == ["top", "side"]


def test_list_filters_and_pages(client, post):
    for i in range(5):
        post(client, defect=i % 2 == 1, melt_lot="M-A" if i < 3 else "M-B", serial=f"S{i}")
    r = client.get("/v1/inspections", params={"lot": "M-A", "limit": 2})
    page = r.json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["next_offset"] == 2
    assert [x["meta"]["serial"] for x in page["items"]] == ["S2", "S1"]
    last = client.get("/v1/inspections", params={"lot": "M-A", "limit": 2, "offset": 2}).json()
    assert last["next_offset"] is None and [x["meta"]["serial"] for x in last["items"]] == ["S0"]
    assert client.get("/v1/inspections", params={"verdict": "REJECT"}).json()["total"] == 2
    assert client.get("/v1/inspections", params={"lot": "M-B", "verdict": "PASS"}).json()["total"] == 1
    assert_error(client.get("/v1/inspections", params={"verdict": "MAYBE"}), 422, "validation_error")
    assert_error(client.get("/v1/inspections", params={"limit": 100000}), 422)


def test_request_id_is_kept_and_echoed(client, post):
    r = post(client, headers={"X-Request-ID": "mes-42"})
    assert r.headers["x-request-id"] == "mes-42" and r.json()["request_id"] == "mes-42"
    r = post(client, headers={"X-Request-ID": "bad id with spaces"})
    assert r.headers["x-request-id"] != "bad id with spaces" and len(r.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"spec": "no-such-spec"}, 422, "unknown_spec"),
        ({"spec": "/etc/passwd.yaml"}, 422, "unknown_spec"),  # never read a path given by a client
        ({"spec": None}, 422, "validation_error"),
        ({"um_per_px": "-1"}, 422, "validation_error"),
        ({"um_per_px": "nan"}, 422, "validation_error"),
        ({"serial": "a\x00b"}, 422, "validation_error"),
        ({"melt_lot": "x" * 200}, 422, "validation_error"),
    ],
)
def test_bad_form_fields_are_4xx(client, post, form, status, code):
    body = assert_error(post(client, **form), status, code)
    assert "Traceback" not in body["error"]["message"]


def test_no_image_is_422(client, post):
    assert_error(post(client, top=False), 422, "validation_error")


def test_unknown_and_malformed_ids(client):
    assert_error(client.get(f"/v1/inspections/{'0' * 32}"), 404, "not_found")
    assert_error(client.get("/v1/inspections/not-an-id"), 422, "validation_error")
    assert_error(client.get(f"/v1/inspections/{'0' * 32}/overlay.png"), 404, "not_found")
    assert_error(client.get("/no/such/route"), 404, "not_found")
    assert_error(client.delete("/v1/inspections"), 405)


def test_specs_and_models(client):
    specs = client.get("/v1/specs").json()
    assert [s["id"] for s in specs] == [s.id for s in list_specs()]
    assert all(s["dimensions"] for s in specs)
    models = client.get("/v1/models").json()
    assert models["models"][0]["name"] == "fake-fp32" and models["error"] is None


def test_health_and_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True


def test_not_ready_when_the_model_cannot_load(post, tmp_path):
    from fastapi.testclient import TestClient

    from magspect.serve import ServeSettings, create_app

    s = ServeSettings(data_dir=tmp_path / "d2", model=tmp_path / "missing.onnx")
    with TestClient(create_app(s)) as client:
        for _ in range(100):  # the model loads in the background
            r = client.get("/readyz")
            if r.json()["detail"] != "model loading":
                break
        assert r.status_code == 503 and "could not be loaded" in r.json()["detail"]
        assert client.get("/v1/models").json()["error"]
        r = post(client)
        assert_error(r, 503, "not_ready")
        assert r.headers["retry-after"] == "1"


def test_metrics(client, post):
    post(client)
    post(client, defect=True)
    post(client, defect=True)
    post(client, spec="nope")
    text = client.get("/metrics").text
    assert f'magspect_inspections_total{{spec="{SPEC}",verdict="REJECT"}} 2.0' in text
    assert f'magspect_inspections_total{{spec="{SPEC}",verdict="PASS"}} 1.0' in text
    assert 'magspect_http_requests_total{method="POST",route="/v1/inspections",status="201"} 3.0' in text
    assert 'route="/v1/inspections",status="422"' in text
    assert "magspect_http_request_duration_seconds_bucket" in text
    assert "magspect_inference_queue_depth 0.0" in text
    assert "magspect_model_ready 1.0" in text


def test_no_verdict_without_a_record(client, post):
    from sqlalchemy.exc import OperationalError

    store = client.app.state.service.store

    def broken(*a, **k):
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    store.add = broken
    r = post(client, defect=True)
    body = assert_error(r, 503, "store_unavailable")
    assert "verdict" in body["error"]["message"] and "REJECT" not in r.text


def test_a_bug_is_a_json_500_without_details(tmp_path, post):
    from fastapi.testclient import TestClient

    from magspect.serve import ServeSettings, create_app

    class Broken(FakeInspector):
        def inspect_detailed(self, views, **kw):
            raise RuntimeError("secret internals /etc/shadow")

    app = create_app(ServeSettings(data_dir=tmp_path), inspector=Broken())
    with TestClient(app, raise_server_exceptions=False) as client:
        r = post(client)
        assert_error(r, 500, "internal_error")
        assert "secret" not in r.text
        assert 'status="500"' in client.get("/metrics").text
