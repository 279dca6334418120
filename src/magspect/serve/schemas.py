"""The service's response bodies (besides :class:`~magspect.store.InspectionRecord`), for OpenAPI too."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from magspect.store import InspectionRecord


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: bad_request, validation_error, unauthorized, not_found, "
                      "unsupported_media_type, payload_too_large, unprocessable_image, queue_full, not_ready, ...")
    message: str = Field(description="what is wrong, for a person")
    details: list[dict[str, Any]] | None = Field(default=None, description="per-field problems, where known")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer has this body."""

    error: ErrorDetail
    request_id: str | None = None


class InspectionPage(BaseModel):
    items: list[InspectionRecord]
    total: int = Field(description="records matching the filters, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last")


class SpecSummary(BaseModel):
    id: str
    version: int
    title: str
    grade: str
    shape: str
    dimensions: list[str]


class ModelInfo(BaseModel):
    name: str
    sha256: str
    provider: str | None
    loaded: bool
    manifest: dict[str, Any] | None = None


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    error: str | None = Field(default=None, description="why the model could not be loaded, if it could not")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    store_ok: bool
    detail: str | None = None
