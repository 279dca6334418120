from sqlalchemy import text

from magspect.store._migrate import current_revision
from magspect.store._tables import Base


def test_store_is_at_head_after_open(store):
    from alembic.script import ScriptDirectory

    from magspect.store._migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(store.engine) == head


def test_migrations_match_the_tables(store):
    """A table changed without a migration (or the reverse) shows up here."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_reopening_does_not_migrate_again(store_factory, make_result):
    a = store_factory()
    rec = a.add(make_result())
    b = store_factory()
    assert b.get(rec.id).id == rec.id


def test_sqlite_is_wal_and_synchronous_full(tmp_path):
    from magspect.store import RecordStore

    s = RecordStore(data_dir=tmp_path)
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert (tmp_path / "records.db").is_file()
    s.close()


def test_bad_url_is_a_store_error(tmp_path):
    import pytest

    from magspect.store import RecordStore, StoreError

    with pytest.raises(StoreError, match="cannot open"):
        RecordStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", data_dir=tmp_path)
