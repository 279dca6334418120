"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from magspect.serve.deps import ServiceDep
from magspect.serve.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="The model is loaded and warmed and the store answers",
            responses={503: {"model": Readiness, "description": "not ready (yet)"}})
async def readyz(service: ServiceDep) -> Response:
    store_ok = await run_in_threadpool(service.store.ping)
    ready = service.ready and store_ok
    detail = None
    if not service.ready:
        detail = f"model could not be loaded: {service.load_error}" if service.load_error else "model loading"
    elif not store_ok:
        detail = "record store not reachable"
    body = Readiness(ready=ready, model_loaded=service.ready, store_ok=store_ok, detail=detail)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(service: ServiceDep) -> Response:
    return Response(service.metrics.render(), media_type=service.metrics.content_type)
