"""Run the store's Alembic migrations on an open connection (``upgrade head``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import Engine


def migrations_dir() -> Path:
    return Path(str(resources.files("magspect.store") / "migrations"))


def alembic_config(connection=None):  # noqa: ANN001, ANN201
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_head(engine: Engine) -> None:
    """Bring the database to the newest schema; a no-op when it is already there."""
    from alembic import command

    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
