"""Pure ASGI middleware: request id, request-body limit, request metrics."""

from __future__ import annotations

import json
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from magspect.serve._errors import ApiError, error_body
from magspect.serve._metrics import Metrics

_RID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class BodyTooLargeError(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "payload_too_large", f"request body larger than the {limit}-byte limit")


class ServiceMiddleware:
    """Gives each request an id (``X-Request-ID`` if valid, else a new one) and echoes it; refuses bodies
    over ``max_body_bytes`` with 413 (by Content-Length, and while streaming); counts and times requests
    by route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        rid = headers.get(b"x-request-id", b"").decode("latin-1")
        if not _RID.match(rid):
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        t0 = time.perf_counter()
        status = 500
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            await send(message)

        async def reply(code: int, msg: str) -> None:
            body = json.dumps(error_body(code, None, msg, rid)).encode()
            await send_wrapper({"type": "http.response.start", "status": code,
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
            await send_wrapper({"type": "http.response.body", "body": body})

        received = 0

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLargeError(self.max_body)
            return message

        try:
            length = headers.get(b"content-length")
            if length is not None and not length.strip().isdigit():
                await reply(400, "Content-Length is not a number")
            elif length is not None and int(length) > self.max_body:
                await reply(413, f"request body of {int(length)} bytes is larger than the {self.max_body}-byte limit")
            else:
                try:
                    await self.app(scope, receive_wrapper, send_wrapper)
                except BodyTooLargeError as exc:
                    if started:
                        raise
                    await reply(413, exc.detail)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - t0)
