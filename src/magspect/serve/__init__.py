"""The REST service: ``create_app()`` builds a FastAPI app over an Inspector and a RecordStore.

Run it::

    magspect serve --port 8000                       # bundled model, SQLite in $XDG_DATA_HOME/magspect
    MAGSPECT_DB_URL=postgresql+psycopg://u:p@db/magspect magspect serve --workers 2
    uvicorn --factory magspect.serve:create_app      # settings from MAGSPECT_* only

Settings (:class:`ServeSettings`, env ``MAGSPECT_<NAME>``): ``model``, ``int8``, ``providers``,
``threads``, ``default_spec``, ``verifier``, ``tta``, ``db_url``, ``data_dir``, ``keep_images_max_age_days``,
``keep_images_max_count``, ``api_key_sha256`` (comma-separated sha256 digests of the accepted
``X-API-Key`` values: ``printf %s KEY | sha256sum``), ``max_upload_bytes``, ``max_pixels``,
``workers``, ``queue_size``, ``retry_after_s``, ``graceful_shutdown_s``, ``overlay_cache``.

Inspect a part::

    curl -H "X-API-Key: $KEY" -F top=@top.png -F side=@side.png -F spec=def-blk-20x10x5-nicuni \\
         -F um_per_px_top=24.4 -F um_per_px_side=24.4 -F serial=SN1 -F melt_lot=M17 \\
         http://127.0.0.1:8000/v1/inspections

Records are exported as CSV with ``magspect records export out.csv [--lot L --verdict REJECT
--since 2026-11-01]``; the OpenAPI schema is at ``/openapi.json`` (docs at ``/docs``).
"""

from magspect.serve.app import create_app
from magspect.serve.settings import ServeSettings, hash_api_key

__all__ = ["ServeSettings", "create_app", "hash_api_key"]
