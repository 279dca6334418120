"""Alembic environment for the record store.

:class:`~magspect.store.RecordStore` runs ``upgrade head`` itself on open, passing its connection in
``config.attributes["connection"]``. From a shell: ``alembic -x url=sqlite:///records.db upgrade head``
with ``script_location`` pointing here.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from magspect.store._tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database URL: alembic -x url=... upgrade head")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        engine = create_engine(url)
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
        engine.dispose()
