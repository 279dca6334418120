"""One JSON error body for every 4xx/5xx (:class:`~magspect.serve.schemas.ErrorResponse`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("magspect.serve")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a machine-readable code; rendered as ErrorResponse."""

    def __init__(self, status_code: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code


def error_body(status: int, code: str | None, message: str, request_id: str | None,
               details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err, "request_id": request_id}


def _rid(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def _jsonable(v: Any) -> Any:
    if isinstance(v, str | int | float | bool) or v is None:
        return v
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = getattr(exc, "code", None)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the request body could not be parsed (expected multipart/form-data with image files)"
        return JSONResponse(error_body(exc.status_code, code, message, _rid(request)), exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [_jsonable(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
            for e in exc.errors()
        ]
        first = details[0] if details else None
        where = ".".join(str(x) for x in first["loc"]) if first else "request"
        message = f"invalid request: {where}: {first['msg']}" if first else "invalid request"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return JSONResponse(error_body(422, "validation_error", message, _rid(request), details), 422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # a bug: logged, never leaked
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        rid = _rid(request)  # answered outside the request-id middleware: set the header here
        return JSONResponse(error_body(500, "internal_error", "internal error; see the service log", rid), 500,
                            headers={"x-request-id": rid} if rid else None)
