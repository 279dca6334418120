"""The REST service: ``create_app()`` builds a FastAPI app over an Inspector and a RecordStore.

Run it with ``magspect serve`` (settings from ``MAGSPECT_*`` environment variables, see
:class:`ServeSettings`), or ``uvicorn --factory magspect.serve:create_app``.
"""

from magspect.serve.app import create_app
from magspect.serve.settings import ServeSettings, hash_api_key

__all__ = ["ServeSettings", "create_app", "hash_api_key"]
