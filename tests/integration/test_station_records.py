"""Records: spooled locally while the central store is unreachable, forwarded when it is back (and
after a restart), never duplicated; ``kill -9`` in the middle of a run loses no acknowledged record."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import yaml

from magspect.edge import RecordSink
from magspect.store import PartMeta, RecordStore
from magspect.types import InspectionResult, Reason, SpecRef, Verdict

SPEC = "def-blk-20x10x5-nicuni"


def _result(i):
    v = Verdict.REJECT if i % 3 == 0 else Verdict.PASS
    reasons = (Reason(rule="t", verdict=v, message="scripted"),) if v != Verdict.PASS else ()
    return InspectionResult(part_id=f"P{i}", verdict=v, reasons=reasons, spec=SpecRef(id=SPEC, version=1))


def _wait(pred, timeout=15.0, what="condition"):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _central_ids(url):
    with RecordStore(url) as central:
        return set(central.iter_ids())


def test_spool_while_central_is_down_then_forward(tmp_path):
    central_dir = tmp_path / "central"  # missing: the central store cannot be opened (unreachable)
    central_url = f"sqlite:///{central_dir / 'records.db'}"
    local = RecordStore(data_dir=tmp_path / "local")
    sink = RecordSink(local, central_url=central_url, retry_s=0.1)
    sink.start()
    ids = [sink.add(_result(i), PartMeta(serial=f"P{i}")) for i in range(5)]
    time.sleep(0.3)
    assert sink.forwarder.pending == 5 and not sink.forwarder.reachable
    sink.stop(timeout_s=0.5)  # station stops while the central store is down: records stay spooled

    central_dir.mkdir()  # the central store comes back
    sink = RecordSink(local, central_url=central_url, retry_s=0.1)
    sink.start()  # after a restart the backlog is found in the local store
    _wait(lambda: sink.forwarder.pending == 0, what="backlog forwarded")
    ids += [sink.add(_result(i), PartMeta(serial=f"P{i}")) for i in range(5, 8)]
    _wait(lambda: sink.forwarder.pending == 0, what="new records forwarded")
    sink.stop()
    assert _central_ids(central_url) == set(ids) == set(local.iter_ids())

    sink = RecordSink(local, central_url=central_url, retry_s=0.1)  # restart: nothing forwarded twice
    sink.start()
    assert sink.forwarder.pending == 0
    sink.stop()
    with RecordStore(central_url) as central:
        assert central.count() == 8
        rec = central.get(ids[3])
        assert rec.meta.serial == "P3" and rec.result.verdict == Verdict.REJECT


def test_forwarding_is_idempotent_after_a_crash_before_the_journal(tmp_path):
    """Central commit done, journal line lost (crash between): the record is not duplicated."""
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    local = RecordStore(data_dir=tmp_path / "local")
    sink = RecordSink(local, central_url=central_url, retry_s=0.1)
    sink.start()
    rid = sink.add(_result(1), PartMeta(serial="P1"))
    _wait(lambda: sink.forwarder.pending == 0)
    sink.stop()
    (tmp_path / "local" / "forwarded.journal").write_text("")  # as if the journal write never happened
    sink = RecordSink(local, central_url=central_url, retry_s=0.1)
    sink.start()
    _wait(lambda: sink.forwarder.pending == 0)
    sink.stop()
    assert _central_ids(central_url) == {rid}


class _Proxy:
    """A TCP proxy to PostgreSQL that can be cut (connections refused and dropped) and restored."""

    def __init__(self, target):
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.srv = None

    def up(self):
        self.srv = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.srv.settimeout(0.1)
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        srv = self.srv
        while self.running:
            try:
                c, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            u = socket.create_connection(self.target)
            self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
        srv.close()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self):
        self.running = False
        time.sleep(0.2)
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns.clear()


_LOCAL_PG = "postgresql+psycopg://magspect:magspect@127.0.0.1:5432/magspect_test"


@pytest.fixture
def pg_schema_url():
    """(URL of a private schema on the test PostgreSQL, its SQLAlchemy URL object); skips without one."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = os.environ.get("MAGSPECT_TEST_PG_URL") or _LOCAL_PG
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        eng = create_engine(url, connect_args={"connect_timeout": 2})
        with eng.connect():
            pass
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("MAGSPECT_TEST_PG_URL"):
            pytest.fail(f"MAGSPECT_TEST_PG_URL does not answer: {exc}")
        pytest.skip(f"no PostgreSQL (MAGSPECT_TEST_PG_URL unset, none at {_LOCAL_PG})")
    schema = f"edge_{uuid.uuid4().hex[:12]}"
    with eng.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    u = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield u
    with eng.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    eng.dispose()


def test_spool_and_forward_to_postgresql(tmp_path, pg_schema_url):
    u = pg_schema_url
    proxy = _Proxy((u.host or "127.0.0.1", u.port or 5432))
    proxied = u.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    local = RecordStore(data_dir=tmp_path / "local")
    sink = RecordSink(local, central_url=proxied, retry_s=0.2)
    sink.start()  # PostgreSQL unreachable (nothing listens on the proxy's port yet)
    ids = [sink.add(_result(i), PartMeta(serial=f"PG{i}")) for i in range(3)]
    time.sleep(0.5)
    assert sink.forwarder.pending == 3
    proxy.up()
    _wait(lambda: sink.forwarder.pending == 0, timeout=30, what="forwarded to PostgreSQL")
    proxy.down()  # goes away again mid-run
    ids += [sink.add(_result(i), PartMeta(serial=f"PG{i}")) for i in range(3, 6)]
    time.sleep(1.0)
    assert sink.forwarder.pending >= 1
    proxy.up()
    _wait(lambda: sink.forwarder.pending == 0, timeout=30, what="forwarded after the outage")
    sink.stop()
    proxy.down()
    with RecordStore(u.render_as_string(hide_password=False)) as central:
        assert central.dialect == "postgresql"
        assert set(central.iter_ids()) == set(ids)


def _station_yaml(tmp_path, n_parts, central_url=None):
    cfg = {
        "spec": SPEC, "deadline_ms": 4000, "model": {"kind": "truth"},
        "camera": {"kind": "sim", "rate_hz": 10, "n_parts": n_parts, "size_px": 256, "prerender": 4, "seed": 3},
        "records": {"data_dir": str(tmp_path / "data"), "central_url": central_url, "retry_s": 0.2},
    }
    p = tmp_path / f"station-{n_parts}.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _acks(path: Path):
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [ln.split() for ln in lines if len(ln.split()) == 2]  # a torn last line is not an acknowledgement


def test_kill_9_mid_run_loses_no_acknowledged_record_and_restart_reconciles(tmp_path):
    central_dir = tmp_path / "central"  # down during the first run
    central_url = f"sqlite:///{central_dir / 'records.db'}"
    ack = tmp_path / "ack.log"
    cmd = [sys.executable, "-m", "magspect", "station", "--quiet", "--ack-log", str(ack), "--config"]
    proc = subprocess.Popen([*cmd, str(_station_yaml(tmp_path, 1000, central_url))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: len(_acks(ack)) >= 8 or proc.poll() is not None, timeout=60, what="8 acknowledged records")
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)  # in the middle of the run: parts in flight, writes in progress
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    acked = _acks(ack)
    with RecordStore(data_dir=tmp_path / "data") as store:
        for serial, rid in acked:
            assert store.get(rid).meta.serial == serial  # RecordNotFoundError = a lost acknowledged record
        n_before = store.count()
    assert n_before >= len(acked) >= 8

    central_dir.mkdir()  # the central store is back; the station restarts for a few more parts
    out = subprocess.run([*cmd, str(_station_yaml(tmp_path, 3, central_url))], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    with RecordStore(data_dir=tmp_path / "data") as store:
        local_ids = set(store.iter_ids())
    assert len(local_ids) == n_before + 3
    assert _central_ids(central_url) == local_ids  # spooled-before-the-crash records forwarded too


def test_a_record_the_central_store_refuses_is_parked_not_blocking(tmp_path):
    central_url = f"sqlite:///{tmp_path / 'central.db'}"
    local = RecordStore(data_dir=tmp_path / "local")
    sink = RecordSink(local, central_url=central_url, retry_s=0.05)
    first = sink.add(_result(1), PartMeta(serial="P1"))
    with RecordStore(central_url) as central:  # a record with that id already there, but a different one:
        central.add(_result(2), PartMeta(serial="OTHER"), record_id=first)  # insert fails, get finds it
    real_get = RecordStore.get

    def refusing_get(self, rid):  # the central store answers but will not take P1 (e.g. a constraint)
        if self.url == central_url and rid == first:
            from magspect.store import RecordNotFoundError

            raise RecordNotFoundError(rid)
        return real_get(self, rid)

    RecordStore.get = refusing_get
    try:
        sink.start()
        second = sink.add(_result(3), PartMeta(serial="P3"))
        _wait(lambda: sink.forwarder.pending == 0, what="the refused record parked, the next forwarded")
        sink.stop()
    finally:
        RecordStore.get = real_get
    assert sink.forwarder.refused == 1
    assert f"{first} refused" in (tmp_path / "local" / "forwarded.journal").read_text()
    assert second in _central_ids(central_url)
