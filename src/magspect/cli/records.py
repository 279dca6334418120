"""``magspect records export | show | prune``: the inspection records kept by the service and station."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import fail

records_app = typer.Typer(help="Inspection records: CSV export, one record as JSON, image retention.",
                          no_args_is_help=True)

DbUrl = Annotated[str | None, typer.Option(help="SQLAlchemy URL [env MAGSPECT_DB_URL, default SQLite].")]
DataDir = Annotated[Path | None, typer.Option(help="Folder of the default database [env MAGSPECT_DATA_DIR].")]


def register(app: typer.Typer) -> None:
    app.add_typer(records_app, name="records")


def _open(db_url: str | None, data_dir: Path | None):  # noqa: ANN202
    import os

    from magspect.store import RecordStore, StoreError

    try:
        return RecordStore(db_url or os.environ.get("MAGSPECT_DB_URL") or None,
                           data_dir=data_dir or os.environ.get("MAGSPECT_DATA_DIR") or None)
    except StoreError as exc:
        fail(str(exc))


@records_app.command("export")
def export(
    out: Annotated[str, typer.Argument(help="CSV file to write, or - for stdout.")],
    db_url: DbUrl = None,
    data_dir: DataDir = None,
    lot: Annotated[str | None, typer.Option(help="Melt, sinter, plating or inspection lot.")] = None,
    verdict: Annotated[str | None, typer.Option(help="PASS, REJECT or REVIEW.")] = None,
    spec: Annotated[str | None, typer.Option(help="Spec id.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Recorded at or after.")] = None,
    until: Annotated[datetime | None, typer.Option(help="Recorded before.")] = None,
) -> None:
    """Write the matching records as CSV, one row per part, oldest first."""
    if verdict is not None and verdict.upper() not in ("PASS", "REJECT", "REVIEW"):
        fail(f"--verdict must be PASS, REJECT or REVIEW, not {verdict!r}")
    store = _open(db_url, data_dir)
    filters = {"lot": lot, "verdict": verdict.upper() if verdict else None, "spec_id": spec, "since": since,
               "until": until}
    n = store.export_csv(sys.stdout if out == "-" else out, **filters)
    if out != "-":
        typer.echo(f"{n} records -> {out}", err=True)


@records_app.command("show")
def show(record_id: str, db_url: DbUrl = None, data_dir: DataDir = None) -> None:
    """One record as JSON."""
    from magspect.store import RecordNotFoundError

    store = _open(db_url, data_dir)
    try:
        typer.echo(store.get(record_id).model_dump_json(indent=2))
    except RecordNotFoundError as exc:
        fail(str(exc), code=1)


@records_app.command("prune")
def prune(
    db_url: DbUrl = None,
    data_dir: DataDir = None,
    max_age_days: Annotated[float | None, typer.Option(help="Remove kept images older than this.")] = 90.0,
    max_count: Annotated[int | None, typer.Option(help="Keep images of at most this many parts.")] = 10_000,
) -> None:
    """Apply the image retention policy now (records themselves are never removed)."""
    from magspect.store import RetentionPolicy

    store = _open(db_url, data_dir)
    store.retention = RetentionPolicy(max_age_days=max_age_days, max_count=max_count)
    typer.echo(f"removed the kept images of {store.prune()} parts")
