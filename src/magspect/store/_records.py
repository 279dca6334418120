"""What the store takes and gives back: part metadata, one stored inspection, a page of them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from magspect.types import InspectionResult

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(v: str | None) -> str | None:
    if v is None:
        return v
    v = v.strip()
    if _CONTROL.search(v):
        raise ValueError("must not contain control characters")
    return v or None


#: A traceability field: up to 128 printable characters, surrounding blanks removed, blank -> None.
TraceField = Annotated[str | None, Field(max_length=128), AfterValidator(_printable)]


class PartMeta(BaseModel):
    """Where a part came from and where it was inspected: what a buyer traces a verdict back to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial: TraceField = None
    part_number: TraceField = None
    revision: TraceField = None
    melt_lot: TraceField = None
    sinter_lot: TraceField = None
    plating_lot: TraceField = None
    inspection_lot: TraceField = None
    station: TraceField = None


LOT_FIELDS: tuple[str, ...] = ("melt_lot", "sinter_lot", "plating_lot", "inspection_lot")


class InspectionRecord(BaseModel):
    """One durably stored inspection: the result exactly as returned, with its traceability."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The record id (32 hex digits).")
    recorded_at: datetime = Field(description="When the record was committed (UTC).")
    request_id: str | None = Field(default=None, description="The X-Request-ID of the request that made it.")
    meta: PartMeta
    result: InspectionResult
    kept_images: tuple[str, ...] = Field(
        default=(), description="Views whose images are still kept on disk (rejected parts, under retention)."
    )


@dataclass(frozen=True)
class Page:
    """A page of records, newest first, and how many match in all."""

    items: list[InspectionRecord]
    total: int
    limit: int
    offset: int
