"""``magspect serve``: the REST service (FastAPI + uvicorn), settings from ``MAGSPECT_*`` and options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import TTA_HELP, Tta, fail


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind [env MAGSPECT_HOST, default 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [env MAGSPECT_PORT, default 8000].")] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="ONNX model, or 'promoted' (the registry's promoted model) [default: the bundled one]."),
    ] = None,
    int8: Annotated[bool | None, typer.Option("--int8/--fp32", help="Bundled INT8 model.")] = None,
    db_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL of the record store [default SQLite].")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for the default database and kept images.")] = None,
    workers: Annotated[int | None, typer.Option(help="Inspections run at once.")] = None,
    queue_size: Annotated[int | None, typer.Option(help="Inspections that may wait beyond those (then 503).")] = None,
    threads: Annotated[int | None, typer.Option(help="onnxruntime threads per inspection.")] = None,
    default_spec: Annotated[str | None, typer.Option(help="Spec used when a request names none.")] = None,
    verifier: Annotated[
        str | None,
        typer.Option(help="Look-alike verifier ONNX, 'darkfield' (the bundled one for views lit only with "
                     "dark-field light) or 'none' [env MAGSPECT_VERIFIER, default: the bundled one when it was "
                     "trained for the model]."),
    ] = None,
    tta: Annotated[
        Tta | None,
        typer.Option("--tta", help=f"{TTA_HELP} [env MAGSPECT_TTA, default none]"),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    fake_model: Annotated[bool, typer.Option("--fake-model", hidden=True,
                                             help="No model: the test stand-in (magspect.serve.testing).")] = False,
) -> None:
    """Run the REST service. Keys: set MAGSPECT_API_KEY_SHA256 to sha256 digests (printf %s KEY | sha256sum)."""
    try:
        import uvicorn
        from pydantic import ValidationError

        from magspect.serve import ServeSettings, create_app
    except ModuleNotFoundError as exc:
        fail(f"the REST service needs the 'serve' extra (pip install 'magspect[serve]'): {exc}")
    given = {"host": host, "port": port, "model": model, "int8": int8, "db_url": db_url, "data_dir": data_dir,
             "workers": workers, "queue_size": queue_size, "threads": threads, "default_spec": default_spec,
             "tta": tta.value if tta is not None else None, "verifier": verifier}
    try:
        settings = ServeSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        fail(f"invalid settings: {exc}")
    inspector = None
    if fake_model:
        from magspect.serve.testing import FakeInspector

        inspector = FakeInspector()
    app = create_app(settings, inspector=inspector)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                timeout_graceful_shutdown=int(settings.graceful_shutdown_s) or 1)
