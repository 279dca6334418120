"""The OpenAPI schema is complete, and the API honours it: schemathesis finds no 5xx and no answer that
contradicts the schema."""

import pytest

pytest.importorskip("schemathesis")
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

PATHS = {
    "/v1/inspections": {"get", "post"},
    "/v1/inspections/{record_id}": {"get"},
    "/v1/inspections/{record_id}/overlay.png": {"get"},
    "/v1/specs": {"get"},
    "/v1/models": {"get"},
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/metrics": {"get"},
}


def test_schema_lists_every_route_with_error_models(client):
    schema = client.get("/openapi.json").json()
    assert {p: set(ops) for p, ops in schema["paths"].items()} == PATHS
    post = schema["paths"]["/v1/inspections"]["post"]
    assert set(post["responses"]) >= {"201", "401", "413", "415", "422", "503"}
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert "Retry-After" in post["responses"]["503"]["headers"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    props = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"]
    assert {"top", "side", "spec", "um_per_px", "serial", "part_number", "revision", "melt_lot", "sinter_lot",
            "plating_lot", "inspection_lot", "station"} <= set(props)
    assert post["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/InspectionRecord")
    for path, ops in schema["paths"].items():
        for op in ops.values():
            assert "500" in op["responses"], path
    overlay = schema["paths"]["/v1/inspections/{record_id}/overlay.png"]["get"]["responses"]["200"]["content"]
    assert "image/png" in overlay


def test_api_against_its_schema(make_client, post):
    """Generated requests for every operation: no 5xx, and every answer matches its declared schema."""
    from hypothesis import given

    from magspect.serve import hash_api_key

    client = make_client(api_key_sha256=[hash_api_key("k1")])
    for defect in (False, True):  # some records for the read routes to find
        post(client, defect=defect, melt_lot="M-1", headers={"X-API-Key": "k1"})
    api = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    ran = []
    for found in api.get_all_operations():
        op = found.ok()

        @given(case=op.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def check(case):
            # positive_data_acceptance is off: a schema-valid upload of random bytes is rightly refused
            # (415/422), and "at least one of top/side" is not expressible for multipart fields.
            case.call_and_validate(headers={"X-API-Key": "k1"}, excluded_checks=[positive_data_acceptance])

        check()
        ran.append(op.label)
    assert len(ran) == sum(len(v) for v in PATHS.values())
