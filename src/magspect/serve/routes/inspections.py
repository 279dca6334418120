"""``/v1/inspections``: inspect a part's images, read records back, draw overlays."""

from __future__ import annotations

import struct
import time
from datetime import datetime
from typing import Annotated, Any

import cv2
import numpy as np
from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from magspect.inspect.imageio import ImageError, decode_image, probe
from magspect.serve._errors import ApiError
from magspect.serve._queue import QueueClosedError, QueueFullError
from magspect.serve._service import OverlaySource, Service
from magspect.serve.deps import RequestIdDep, ServiceDep
from magspect.serve.schemas import ErrorResponse, InspectionPage
from magspect.specs import list_specs
from magspect.store import MAX_PAGE, InspectionRecord, PartMeta, RecordNotFoundError, StoreError
from magspect.types import Verdict

router = APIRouter(prefix="/v1/inspections", tags=["inspections"])

RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="record id: 32 hex digits")]
_Trace = Annotated[str | None, Form(max_length=128)]
_Scale = Annotated[float | None, Form(gt=0, le=1e6, allow_inf_nan=False)]

_ERR = {"model": ErrorResponse}
_RETRY = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}


class _BadImageError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _tiff_size(data: bytes) -> tuple[int | None, int | None]:
    """Width and height from a TIFF's first IFD (``probe`` does not read TIFF sizes)."""
    try:
        bo = "<" if data[:2] == b"II" else ">"
        (ifd,) = struct.unpack(bo + "I", data[4:8])
        (n,) = struct.unpack(bo + "H", data[ifd : ifd + 2])
        size: dict[int, int] = {}
        for i in range(min(n, 512)):
            tag, typ, _count = struct.unpack(bo + "HHI", data[ifd + 2 + 12 * i : ifd + 10 + 12 * i])
            if tag in (256, 257):
                raw = data[ifd + 10 + 12 * i : ifd + 14 + 12 * i]
                size[tag] = struct.unpack(bo + "H", raw[:2])[0] if typ == 3 else struct.unpack(bo + "I", raw)[0]
        return size.get(256), size.get(257)
    except struct.error:
        return None, None


async def _read_upload(view: str, f: UploadFile, max_bytes: int, max_pixels: int) -> bytes:
    data = await f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "payload_too_large", f"{view} image: more than the {max_bytes}-byte limit")
    if not data:
        raise ApiError(422, "unprocessable_image", f"{view} image: empty (0 bytes)")
    try:
        info = probe(data)
    except ImageError:
        raise ApiError(415, "unsupported_media_type",
                       f"{view} image: not PNG, JPEG, TIFF or BMP (checked by its magic bytes)") from None
    w, h = info.width_px, info.height_px
    if info.format == "tiff":
        w, h = _tiff_size(data)
    if w is not None and h is not None:
        if w <= 0 or h <= 0:
            raise ApiError(422, "unprocessable_image", f"{view} image: header says {w}x{h} px")
        if w * h > max_pixels:
            raise ApiError(413, "too_many_pixels",
                           f"{view} image: header says {w}x{h} px, more than the {max_pixels}-pixel limit")
    return data


def _spec_id(requested: str | None, service: Service) -> str:
    spec = requested or service.settings.default_spec or getattr(service.inspector, "default_spec", None)
    if not spec:
        raise ApiError(422, "validation_error", "spec is required (a bundled spec id; see GET /v1/specs)")
    known = [s.id for s in list_specs()]
    if spec not in known:  # ids only: a path would let a client read files on the server
        raise ApiError(422, "unknown_spec", f"unknown spec {spec!r}; known: {', '.join(known)}")
    return spec


def _inspect_job(service: Service, raw: dict[str, bytes], spec: str, part_id: str | None,
                 um_per_px: Any) -> tuple[Any, dict[str, OverlaySource], float]:
    t0 = time.perf_counter()
    images = {}
    for view, data in raw.items():
        try:
            images[view] = decode_image(data, name=f"{view} image", max_pixels=service.settings.max_pixels,
                                        max_bytes=service.settings.max_upload_bytes)
        except ImageError as exc:
            too_big = "pixel limit" in str(exc)
            raise _BadImageError(413 if too_big else 422, "too_many_pixels" if too_big else "unprocessable_image",
                                 str(exc)) from None
    inspector = service.inspector
    assert inspector is not None
    inspection = inspector.inspect_detailed(images, spec=spec, part_id=part_id, um_per_px=um_per_px)
    sources: dict[str, OverlaySource] = {}
    for view, art in (getattr(inspection, "views", None) or {}).items():
        img = getattr(art, "image", None)
        if img is None:
            continue
        seg = getattr(art, "segmentation", None)
        outline = getattr(getattr(art, "metrology", None), "ideal_outline_xy_px", None)
        sources[view] = OverlaySource(img, None if seg is None else seg.class_mask,
                                      outline[0] if outline else None)
    return inspection.result, sources, time.perf_counter() - t0


@router.post(
    "",
    status_code=201,
    response_model=InspectionRecord,
    summary="Inspect one part",
    description="Upload the part's views (`top` and/or `side`: PNG, JPEG, TIFF or BMP, 8/16-bit), the spec id "
    "and the part's traceability. The verdict is returned only after its record is durably stored. "
    "Images of rejected parts are kept on disk under the retention policy.",
    responses={
        201: {"headers": {"Location": {"description": "the record's URL", "schema": {"type": "string"}}}},
        401: _ERR, 413: _ERR, 415: _ERR, 422: _ERR,
        503: {**_ERR, "description": "queue full, model not loaded yet, or the record could not be stored",
              "headers": _RETRY},
    },
)
async def create_inspection(
    service: ServiceDep,
    request_id: RequestIdDep,
    response: Response,
    top: Annotated[UploadFile | None, File(description="top view image")] = None,
    side: Annotated[UploadFile | None, File(description="side view image")] = None,
    spec: Annotated[str | None, Form(max_length=128, description="bundled spec id (GET /v1/specs)")] = None,
    um_per_px: Annotated[float | None, Form(gt=0, le=1e6, allow_inf_nan=False,
                                            description="scale of every view, µm per pixel")] = None,
    um_per_px_top: _Scale = None,
    um_per_px_side: _Scale = None,
    serial: _Trace = None,
    part_number: _Trace = None,
    revision: _Trace = None,
    melt_lot: _Trace = None,
    sinter_lot: _Trace = None,
    plating_lot: _Trace = None,
    inspection_lot: _Trace = None,
    station: _Trace = None,
) -> InspectionRecord:
    s = service.settings
    uploads = {v: f for v, f in (("top", top), ("side", side)) if f is not None}
    if not uploads:
        raise ApiError(422, "validation_error", "no image: send the part's views as files named 'top' and/or 'side'")
    try:
        meta = PartMeta(serial=serial, part_number=part_number, revision=revision, melt_lot=melt_lot,
                        sinter_lot=sinter_lot, plating_lot=plating_lot, inspection_lot=inspection_lot, station=station)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ApiError(422, "validation_error", f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    if not service.ready:
        raise ApiError(503, "not_ready", "the model is not loaded yet" if service.load_error is None
                       else f"the model could not be loaded: {service.load_error}",
                       headers={"Retry-After": str(s.retry_after_s)})
    spec_id = _spec_id(spec, service)
    raw = {v: await _read_upload(v, f, s.max_upload_bytes, s.max_pixels) for v, f in uploads.items()}
    scales = {v: x for v, x in (("top", um_per_px_top), ("side", um_per_px_side)) if x is not None}
    scale: Any = {v: scales.get(v, um_per_px) for v in raw} if scales else um_per_px
    if isinstance(scale, dict) and any(x is None for x in scale.values()):
        scale = {v: x for v, x in scale.items() if x is not None}

    try:
        result, sources, seconds = await service.queue.run(_inspect_job, service, raw, spec_id, meta.serial, scale)
    except QueueFullError as exc:
        service.metrics.queue_rejected.inc()
        raise ApiError(503, "queue_full", f"too many inspections in progress ({exc}); try again shortly",
                       headers={"Retry-After": str(s.retry_after_s)}) from None
    except QueueClosedError:
        raise ApiError(503, "shutting_down", "the service is shutting down",
                       headers={"Retry-After": str(s.retry_after_s)}) from None
    except _BadImageError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    service.metrics.inference.observe(seconds)

    masks = {v: src.class_mask for v, src in sources.items() if src.class_mask is not None}
    try:
        record = await run_in_threadpool(service.store.add, result, meta, raw, masks=masks, request_id=request_id)
    except (SQLAlchemyError, StoreError, OSError) as exc:
        raise ApiError(503, "store_unavailable",
                       f"the record could not be stored, so no verdict is given: {type(exc).__name__}",
                       headers={"Retry-After": str(s.retry_after_s)}) from None
    service.remember_overlay(record.id, sources)
    service.metrics.inspections.labels(spec_id, result.verdict.value).inc()
    response.headers["Location"] = f"/v1/inspections/{record.id}"
    return record


@router.get("", response_model=InspectionPage, summary="Find inspection records",
            description="Newest first. `lot` matches the melt, sinter, plating or inspection lot.",
            responses={401: _ERR, 422: _ERR})
async def list_inspections(
    service: ServiceDep,
    lot: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Verdict | None = None,
    spec: Annotated[str | None, Query(max_length=128)] = None,
    serial: Annotated[str | None, Query(max_length=128)] = None,
    station: Annotated[str | None, Query(max_length=128)] = None,
    since: Annotated[datetime | None, Query(description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="recorded before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> InspectionPage:
    page = await run_in_threadpool(
        service.store.query, lot=lot, verdict=verdict, spec_id=spec, serial=serial, station=station,
        since=since, until=until, limit=limit, offset=offset,
    )
    nxt = offset + len(page.items)
    return InspectionPage(items=page.items, total=page.total, limit=limit, offset=offset,
                          next_offset=nxt if nxt < page.total else None)


async def _get(service: Service, record_id: str) -> InspectionRecord:
    try:
        return await run_in_threadpool(service.store.get, record_id)
    except RecordNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@router.get("/{record_id}", response_model=InspectionRecord, summary="One inspection record",
            responses={401: _ERR, 404: _ERR, 422: _ERR})
async def get_inspection(service: ServiceDep, record_id: RecordId) -> InspectionRecord:
    return await _get(service, record_id)


def _overlay_png(service: Service, record: InspectionRecord, view: str) -> bytes | None:
    from magspect.inspect.report import draw_overlay

    src = (service.recent_overlay(record.id) or {}).get(view)
    if src is None:
        files = service.store.kept_files(record.id, view)
        if "image" not in files:
            return None
        try:
            image = decode_image(files["image"], max_pixels=service.settings.max_pixels)
        except ImageError:
            return None
        mask = cv2.imread(str(files["mask"]), cv2.IMREAD_UNCHANGED) if "mask" in files else None
        if mask is not None and mask.shape[:2] != image.shape[:2]:
            mask = None
        src = OverlaySource(image, mask, None)
    out = draw_overlay(src.image, src.class_mask, record.result, view=view,
                       outline_px=None if src.outline_px is None else np.asarray(src.outline_px))
    ok, buf = cv2.imencode(".png", out)
    return buf.tobytes() if ok else None


@router.get(
    "/{record_id}/overlay.png",
    response_class=Response,
    summary="The part's image with defects, outline and measurements drawn on it",
    description="Available for the most recent inspections (kept in memory) and for parts whose images are "
    "kept (rejected parts, under the retention policy); 404 otherwise.",
    responses={200: {"content": {"image/png": {}}, "description": "PNG image"}, 401: _ERR, 404: _ERR, 422: _ERR},
)
async def get_overlay(
    service: ServiceDep,
    record_id: RecordId,
    view: Annotated[str | None, Query(pattern="^(top|side)$", description="default: the first view")] = None,
) -> Response:
    record = await _get(service, record_id)
    views = record.result.views
    view = view or (views[0] if views else "top")
    if view not in views:
        raise ApiError(404, "not_found", f"inspection {record_id} has no {view} view (views: {', '.join(views)})")
    png = await run_in_threadpool(_overlay_png, service, record, view)
    if png is None:
        raise ApiError(404, "overlay_not_available",
                       "overlay not available: images are kept only for rejected parts (under the retention "
                       "policy) and for the most recent inspections")
    return Response(png, media_type="image/png")
