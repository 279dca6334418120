"""FastAPI dependencies, as ``Annotated`` aliases for the routes."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from magspect.serve._errors import ApiError
from magspect.serve._service import Service
from magspect.serve.settings import hash_api_key

_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False,
    description="An API key whose sha256 is listed in MAGSPECT_API_KEY_SHA256 (not needed when that is empty).",
)


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def request_id(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


RequestIdDep = Annotated[str | None, Depends(request_id)]


def require_api_key(service: ServiceDep, key: Annotated[str | None, Security(_api_key_header)]) -> None:
    allowed = service.settings.api_key_sha256
    if not allowed:
        return
    if not key:
        raise ApiError(401, "unauthorized", "missing X-API-Key header", headers={"WWW-Authenticate": "APIKey"})
    digest = hash_api_key(key)
    if not any(hmac.compare_digest(digest, h) for h in allowed):
        raise ApiError(401, "unauthorized", "invalid API key", headers={"WWW-Authenticate": "APIKey"})
