"""``/v1/specs`` and ``/v1/models``: what the service can judge against, and with what."""

from __future__ import annotations

import json

from fastapi import APIRouter

from magspect.serve.deps import ServiceDep
from magspect.serve.schemas import ErrorResponse, ModelInfo, ModelsResponse, SpecSummary
from magspect.specs import list_specs

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/specs", response_model=list[SpecSummary], summary="The bundled part specs",
            responses={401: {"model": ErrorResponse}})
async def get_specs() -> list[SpecSummary]:
    return [
        SpecSummary(id=s.id, version=s.version, title=s.title, grade=s.grade, shape=s.part.shape,
                    dimensions=list(s.dimensions))
        for s in list_specs()
    ]


@router.get("/models", response_model=ModelsResponse, summary="The model in use (once loaded)",
            responses={401: {"model": ErrorResponse}})
async def get_models(service: ServiceDep) -> ModelsResponse:
    insp = service.inspector
    if insp is None:
        return ModelsResponse(models=[], error=service.load_error)
    ref = insp.model_ref
    manifest = getattr(getattr(insp, "segmenter", None), "manifest", None)
    man = json.loads(manifest.to_json(indent=None)) if manifest is not None and hasattr(manifest, "to_json") else None
    return ModelsResponse(models=[ModelInfo(name=ref.name, sha256=ref.sha256, provider=ref.provider, loaded=True,
                                            manifest=man)])
