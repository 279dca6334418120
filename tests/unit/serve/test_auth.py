import pytest
from pydantic import ValidationError

from magspect.serve import ServeSettings, hash_api_key

KEY = "s3cret-key-for-line-4"


@pytest.fixture
def keyed(make_client):
    return make_client(api_key_sha256=[hash_api_key(KEY), hash_api_key("other")])


def test_no_key_is_401(keyed, post):
    r = post(keyed)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "missing" in r.json()["error"]["message"]
    assert keyed.get("/v1/specs").status_code == 401
    assert keyed.get("/v1/inspections").status_code == 401


def test_wrong_key_is_401(keyed, post):
    r = post(keyed, headers={"X-API-Key": "guess"})
    assert r.status_code == 401 and "invalid" in r.json()["error"]["message"]


def test_right_key_works(keyed, post):
    assert post(keyed, headers={"X-API-Key": KEY}).status_code == 201
    assert keyed.get("/v1/inspections", headers={"X-API-Key": "other"}).json()["total"] == 1


def test_health_and_metrics_need_no_key(keyed):
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200


def test_settings_take_digests_never_keys(monkeypatch):
    with pytest.raises(ValidationError, match="sha256 hex digests"):
        ServeSettings(api_key_sha256=[KEY])
    monkeypatch.setenv("MAGSPECT_API_KEY_SHA256", f"{hash_api_key(KEY).upper()}, {hash_api_key('b')}")
    assert ServeSettings().api_key_sha256 == [hash_api_key(KEY), hash_api_key("b")]


def test_openapi_declares_the_key_header(client):
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": schema["components"]["securitySchemes"]["APIKeyHeader"]["description"],
    }
