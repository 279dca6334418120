"""How long the images of kept (by default: rejected) parts stay on disk."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetentionPolicy(BaseModel):
    """Images are removed when older than ``max_age_days`` or beyond the newest ``max_count`` parts.

    The inspection record itself is never removed; only its image files (and their rows).
    ``None`` switches a limit off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_age_days: float | None = Field(default=90.0, gt=0)
    max_count: int | None = Field(default=10_000, ge=0)
