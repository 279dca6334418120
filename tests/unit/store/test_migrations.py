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


def test_stores_opened_at_once_migrate_once(store_factory):
    """The service and a station may open a fresh database together: neither may fail."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: store_factory(), range(4)))
    assert len({current_revision(s.engine) for s in stores}) == 1


def test_processes_opening_a_fresh_sqlite_database_at_once(tmp_path):
    import subprocess
    import sys

    code = "import sys; from magspect.store import RecordStore; RecordStore(data_dir=sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
