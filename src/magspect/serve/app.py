"""The app factory. Nothing is created at import time: settings, store, model and queue are made by
:func:`create_app` and its lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool

from magspect import __version__
from magspect.serve._errors import install_error_handlers
from magspect.serve._metrics import Metrics
from magspect.serve._middleware import ServiceMiddleware
from magspect.serve._queue import InferenceQueue
from magspect.serve._service import InspectorLike, Service
from magspect.serve.deps import require_api_key
from magspect.serve.routes import catalog, health, inspections
from magspect.serve.schemas import ErrorResponse
from magspect.serve.settings import ServeSettings
from magspect.store import RecordStore

log = logging.getLogger("magspect.serve")

DESCRIPTION = """Scores images of sintered NdFeB magnets against a part spec and keeps a durable,
traceable record of every verdict (part serial, lots, station, model, spec, calibration).

Send `X-API-Key` when the service is configured with keys. Every error has the same JSON body
(`ErrorResponse`). A full inference queue answers 503 with `Retry-After`."""


def create_app(
    settings: ServeSettings | None = None,
    inspector: InspectorLike | None = None,
    store: RecordStore | None = None,
) -> FastAPI:
    """Build the app. ``inspector``/``store`` are injected (tests, the station) or made from ``settings``
    at startup: the store is opened and migrated, the model loaded and warmed in the background
    (``/readyz`` says when)."""
    settings = settings or ServeSettings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        the_store = store if store is not None else await run_in_threadpool(
            lambda: RecordStore(settings.db_url, data_dir=settings.data_dir, retention=settings.retention)
        )
        queue = InferenceQueue(settings.workers, settings.queue_size)
        service = Service(settings=settings, store=the_store, queue=queue, metrics=metrics, inspector=inspector)
        metrics.bind_queue(lambda: queue.depth, queue.capacity)
        if inspector is not None:
            metrics.model_ready.set(1)
        if not settings.api_key_sha256:
            log.warning("no API keys configured (MAGSPECT_API_KEY_SHA256): the API is open")
        app.state.service = service
        loader = None
        if inspector is None:
            loader = asyncio.get_running_loop().run_in_executor(None, service.load_inspector)
        try:
            yield
        finally:
            # the server has stopped taking requests and waited for those in flight; let the queue drain
            await run_in_threadpool(queue.shutdown, True)
            if loader is not None:
                await loader
            if own_store:
                the_store.close()

    app = FastAPI(
        title="magspect",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(ServiceMiddleware, metrics=metrics, max_body_bytes=2 * settings.max_upload_bytes + 65536)
    auth = [Depends(require_api_key)]
    bug = {500: {"model": ErrorResponse, "description": "internal error (a bug: logged, details withheld)"}}
    app.include_router(inspections.router, dependencies=auth, responses=bug)
    app.include_router(catalog.router, dependencies=auth, responses=bug)
    app.include_router(health.router, responses=bug)
    return app
