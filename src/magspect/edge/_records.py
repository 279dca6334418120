"""Records of the station: every decided part into the local RecordStore, forwarded to a central one.

The local store (SQLite in WAL mode, ``synchronous=FULL``) is the spool: a record is acknowledged
once its local commit returns, so ``kill -9`` loses nothing acknowledged. When a central store
(PostgreSQL) is configured, a forwarder thread copies every local record there, in order, keeping a
journal of forwarded ids (append-only, fsynced). While the central store is unreachable, records
wait in the local one; when it comes back (or the station restarts) the backlog is forwarded.
Forwarding is idempotent by record id, so a crash between the central commit and the journal write
does not duplicate a record. Kept images stay local (only the record goes to the central store).
A record the reachable central store refuses five times is parked (logged, ``<id> refused`` in the
journal) so that it cannot block the rest.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from magspect.store import PartMeta, RecordNotFoundError, RecordStore, StoreError
from magspect.types import InspectionResult

log = logging.getLogger("magspect.edge")


class Forwarder:
    """Copies local records to the central store; survives outages and restarts."""

    def __init__(self, local: RecordStore, central_url: str, journal: Path, *, retry_s: float = 1.0) -> None:
        self.local = local
        self.central_url = central_url
        self.journal = Path(journal)
        self.retry_s = retry_s
        self.central: RecordStore | None = None
        self.reachable = False
        self.forwarded = 0
        self.refused = 0  # records the reachable central store refused max_attempts times (parked, logged)
        self.max_attempts = 5
        self._pending: deque[str] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._done = self._read_journal()

    def _read_journal(self) -> set[str]:
        if not self.journal.exists():
            return set()
        lines = self.journal.read_text(encoding="utf-8").splitlines()
        return {ln.split()[0] for ln in lines if ln.split() and len(ln.split()[0]) == 32}  # torn last line: ignored

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def start(self) -> None:
        with self._cond:
            queued = set(self._pending)  # submitted before start: already in the local store's backlog
            backlog = [rid for rid in self.local.iter_ids() if rid not in self._done and rid not in queued]
            self._pending.extendleft(reversed(backlog))
        self._thread = threading.Thread(target=self._run, name="edge-forwarder", daemon=True)
        self._thread.start()

    def submit(self, record_id: str) -> None:
        with self._cond:
            self._pending.append(record_id)
            self._cond.notify()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Forward what can be forwarded within ``timeout_s``; the rest stays spooled for next time."""
        t_end = time.monotonic() + timeout_s
        while self.pending and self.reachable and time.monotonic() < t_end:
            time.sleep(0.02)
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread:
            self._thread.join(timeout=max(0.1, t_end - time.monotonic()) + 1)
        if self.central is not None:
            self.central.close()

    def _connect(self) -> bool:
        if self.central is None:
            try:
                self.central = RecordStore(self.central_url)
            except StoreError as exc:
                log.debug("central store unreachable: %s", exc)
                return False
        return True

    def _send(self, rid: str) -> None:
        rec = self.local.get(rid)
        try:
            self.central.add(rec.result, rec.meta, record_id=rid, request_id=rec.request_id)  # type: ignore[union-attr]
        except Exception:
            try:  # already there (sent before a crash, journal not yet written)?
                self.central.get(rid)  # type: ignore[union-attr]
            except RecordNotFoundError:
                raise
            except Exception as exc:  # unreachable: the original error is the story
                raise StoreError(str(exc)) from exc

    def _run(self) -> None:
        failures: dict[str, int] = {}
        with open(self.journal, "a", encoding="utf-8") as jf:
            while True:
                with self._cond:
                    while not self._pending and not self._stop:
                        self._cond.wait(0.5)
                    if self._stop:
                        return
                    rid = self._pending[0]
                if not self._connect():
                    self.reachable = False
                    with self._cond:
                        self._cond.wait(self.retry_s)
                    continue
                try:
                    self._send(rid)
                except Exception as exc:  # noqa: BLE001 - any failure: keep it spooled, retry later
                    self.reachable = bool(self.central is not None and self.central.ping())
                    failures[rid] = failures.get(rid, 0) + 1
                    if self.reachable and failures[rid] >= self.max_attempts:
                        # the server answers but refuses this record: park it, don't block the rest
                        log.error("central store refuses record %s (%s): parked in %s", rid, exc, self.journal)
                        self.refused += 1
                        jf.write(f"{rid} refused\n")
                        jf.flush()
                        os.fsync(jf.fileno())
                        with self._cond:
                            self._pending.popleft()
                        continue
                    log.warning("central store: forwarding %s failed, kept spooled: %s", rid, exc)
                    with self._cond:
                        self._cond.wait(self.retry_s)
                    continue
                failures.pop(rid, None)
                self.reachable = True
                jf.write(rid + "\n")
                jf.flush()
                os.fsync(jf.fileno())
                with self._cond:
                    self._pending.popleft()
                self.forwarded += 1


class RecordSink:
    """The local store plus an optional forwarder. ``add`` returns the record id once durable."""

    def __init__(self, local: RecordStore, *, central_url: str | None = None, retry_s: float = 1.0) -> None:
        self.local = local
        self.forwarder: Forwarder | None = None
        if central_url:
            self.forwarder = Forwarder(local, central_url, local.data_dir / "forwarded.journal", retry_s=retry_s)

    def start(self) -> None:
        if self.forwarder:
            self.forwarder.start()

    def add(self, result: InspectionResult, meta: PartMeta, images: dict[str, bytes] | None = None) -> str:
        rec = self.local.add(result, meta, images)
        if self.forwarder:
            self.forwarder.submit(rec.id)
        return rec.id

    def wants_images(self, result: InspectionResult) -> bool:
        return result.verdict in self.local.keep_images_for

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.forwarder:
            self.forwarder.stop(timeout_s)
