"""The service's settings: typed, read from ``MAGSPECT_*`` environment variables .

Nothing here is created at import time: :func:`~magspect.serve.create_app` builds a
:class:`ServeSettings` when it is not given one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from magspect.store import RetentionPolicy
from magspect.types import Tta


def hash_api_key(key: str) -> str:
    """The sha256 hex digest stored in the settings for an API key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class ServeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAGSPECT_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    # model
    model: Path | None = Field(default=None, description="ONNX model; default the bundled one")
    int8: bool = False
    providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    threads: int | None = Field(default=None, ge=1, description="onnxruntime intra-op threads per inference "
                                "(default: MAGSPECT_THREADS, else the CPU count / workers)")
    default_spec: str | None = None
    verifier: str | None = Field(
        default=None, description="look-alike verifier ONNX (e.g. one re-tuned with `magspect tune-verifier`), "
        "'darkfield' (the bundled one for views lit only with dark-field light) or 'none'; default the bundled one "
        "when it was trained for the model")
    tta: Tta = Field(
        default="none", description="test-time augmentation: logits averaged over mirrored views (hflip: 2 model "
        "runs per view, fewer false rejects; flips: 4)")

    # records
    db_url: str | None = Field(default=None, description="SQLAlchemy URL; default SQLite in data_dir")
    data_dir: Path | None = Field(default=None, description="default $XDG_DATA_HOME/magspect")
    keep_images_max_age_days: float | None = Field(default=90.0, gt=0)
    keep_images_max_count: int | None = Field(default=10_000, ge=0)

    # safety
    api_key_sha256: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="sha256 hex digests of the accepted X-API-Key values (comma-separated in the env); "
        "empty: no key needed (development only)",
    )
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024, description="per image file")
    max_pixels: int = Field(default=50_000_000, ge=1024, description="per image, checked in the header first")
    max_field_bytes: int = Field(default=4096, ge=256, description="per text field of the form")

    # inference queue
    workers: int = Field(default_factory=lambda: min(4, os.cpu_count() or 1), ge=1, le=64,
                         description="inspections run at once (default: the CPU count, at most 4)")
    queue_size: int = Field(default=16, ge=0, le=10_000, description="inspections that may wait beyond those")
    retry_after_s: int = Field(default=1, ge=1)
    graceful_shutdown_s: float = Field(default=30.0, gt=0)
    overlay_cache: int = Field(default=8, ge=0, description="recent inspections whose overlays are kept in memory")
    overlay_cache_mb: float = Field(default=256.0, ge=0, description="memory those may take, at most")

    @field_validator("providers", "api_key_sha256", mode="before")
    @classmethod
    def _comma_list(cls, v: object) -> object:
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("api_key_sha256")
    @classmethod
    def _hex_digests(cls, v: list[str]) -> list[str]:
        out = []
        for h in v:
            h = h.lower()
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError("api_key_sha256 takes sha256 hex digests (64 hex digits), never the keys themselves")
            out.append(h)
        return out

    @property
    def retention(self) -> RetentionPolicy:
        return RetentionPolicy(max_age_days=self.keep_images_max_age_days, max_count=self.keep_images_max_count)
