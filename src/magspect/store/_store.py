"""RecordStore: durable, traceable inspection records (SQLite in WAL mode by default, PostgreSQL by URL).

``add`` returns only after the record (and any kept image files) is durably committed: files are
written and fsynced first, then the row is committed (SQLite ``synchronous=FULL``; PostgreSQL's
default commit). A failed commit removes the files it wrote. Thread-safe: one engine, a session per call.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np
from sqlalchemy import Engine, create_engine, event, func, or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from magspect.inspect.imageio import sniff_format
from magspect.store._migrate import upgrade_head
from magspect.store._records import LOT_FIELDS, InspectionRecord, Page, PartMeta
from magspect.store._retention import RetentionPolicy
from magspect.store._tables import DefectRow, ImageRow, InspectionRow, MeasurementRow
from magspect.types import InspectionResult, Measurement, Verdict

MAX_PAGE = 500
_MASK_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]  # fast
_EXT = {"png": "png", "jpeg": "jpg", "tiff": "tif", "bmp": "bmp"}


def load_result(text: str) -> InspectionResult:
    """An InspectionResult from its JSON (as dumped, computed fields included).

    ``Measurement`` dumps its computed ``value_mm``/``value_deg`` but forbids them as input, so they
    are dropped before validation.
    """
    data = json.loads(text)
    computed = set(Measurement.model_computed_fields)
    for m in (data.get("measurements") or {}).values():
        if isinstance(m, dict):
            for k in computed:
                m.pop(k, None)
    return InspectionResult.model_validate(data)


class RecordNotFoundError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


class StoreError(RuntimeError):
    """The store cannot be opened or written (bad URL, unreachable server, full disk)."""


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "magspect"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite:///{Path(path).expanduser().resolve()}"


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _fsync_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class RecordStore:
    """Inspection records with traceability, queries, CSV export and kept images of rejected parts.

    ``url``: an SQLAlchemy URL (``postgresql+psycopg://...``); default SQLite at
    ``<data_dir>/records.db``. ``data_dir``: where the default database and kept images live
    (default ``$XDG_DATA_HOME/magspect``). The schema is migrated to the newest (``alembic upgrade
    head``) on open.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        data_dir: str | Path | None = None,
        images_dir: str | Path | None = None,
        retention: RetentionPolicy | None = None,
        keep_images_for: tuple[Verdict, ...] = (Verdict.REJECT,),
        migrate: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
        if url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            url = sqlite_url(self.data_dir / "records.db")
        self.url = url
        self.images_dir = Path(images_dir).expanduser() if images_dir is not None else self.data_dir / "images"
        self.retention = retention or RetentionPolicy()
        self.keep_images_for = tuple(Verdict(v) for v in keep_images_for)
        try:
            self.engine = self._make_engine(url)
            if migrate:
                upgrade_head(self.engine)
        except Exception as exc:  # SQLAlchemy/driver errors: say which database, not a traceback
            raise StoreError(f"cannot open the record store at {self._safe_url()}: {exc}") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    # -- setup -----------------------------------------------------------------------------
    @staticmethod
    def _make_engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=FULL")  # a commit survives power loss, not only a crash
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return create_engine(url, pool_pre_ping=True)

    def _safe_url(self) -> str:
        try:
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001
            return "<unparseable URL>"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return True
        except Exception:  # noqa: BLE001
            return False

    # -- write -----------------------------------------------------------------------------
    def add(
        self,
        result: InspectionResult,
        meta: PartMeta | None = None,
        images: Mapping[str, bytes] | None = None,
        *,
        masks: Mapping[str, np.ndarray] | None = None,
        request_id: str | None = None,
        record_id: str | None = None,
    ) -> InspectionRecord:
        """Store one inspection; returns once it is durably committed.

        ``images``: the encoded images as received, per view; kept on disk only when the verdict is
        in ``keep_images_for`` (default: REJECT). ``masks``: per-view class-id masks, kept with them
        (for overlays).
        """
        meta = meta or PartMeta()
        rid = record_id or uuid.uuid4().hex
        now = datetime.now(UTC)
        row = self._row(rid, now, result, meta, request_id)
        written: list[Path] = []
        keep = bool(images) and result.verdict in self.keep_images_for
        try:
            if keep:
                row.images = self._write_images(rid, now, images or {}, masks or {}, written)
            with self._sessions() as session, session.begin():
                session.add(row)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            if written:
                with contextlib.suppress(OSError):
                    written[0].parent.rmdir()
            raise
        if keep:
            self.prune()
        return InspectionRecord(
            id=rid,
            recorded_at=now,
            request_id=request_id,
            meta=meta,
            result=result,
            kept_images=tuple(sorted({im.view for im in row.images})) if keep else (),
        )

    @staticmethod
    def _row(
        rid: str, now: datetime, result: InspectionResult, meta: PartMeta, request_id: str | None
    ) -> InspectionRow:
        row = InspectionRow(
            id=rid,
            recorded_at=now,
            inspected_at=_utc(result.created_at),
            request_id=request_id,
            **meta.model_dump(),
            verdict=result.verdict.value,
            spec_id=result.spec.id if result.spec else None,
            spec_version=result.spec.version if result.spec else None,
            model_name=result.model.name if result.model else None,
            model_sha256=result.model.sha256 if result.model else None,
            model_provider=result.model.provider if result.model else None,
            calibration_id=result.calibration_id,
            views=",".join(result.views),
            error=result.error,
            total_ms=result.timings_ms.get("total"),
            timings_json=json.dumps(result.timings_ms),
            result_json=result.model_dump_json(),
        )
        row.defects = [
            DefectRow(
                idx=i,
                class_name=d.class_name,
                subtype=d.subtype,
                zone=d.zone,
                view=d.view,
                length_mm=d.length_mm,
                width_mm=d.width_mm,
                depth_mm=d.depth_mm,
                area_mm2=d.area_mm2,
                confidence=d.confidence,
                edge_index=d.edge_index,
            )
            for i, d in enumerate(result.defects)
        ]
        row.measurements = [
            MeasurementRow(
                name=name,
                unit=m.unit,
                value=m.value,
                nominal=m.nominal,
                tol_minus=m.tol_minus,
                tol_plus=m.tol_plus,
                uncertainty=m.uncertainty,
                status=m.status.value,
                view=m.view,
            )
            for name, m in result.measurements.items()
        ]
        return row

    def _write_images(
        self, rid: str, now: datetime, images: Mapping[str, bytes], masks: Mapping[str, np.ndarray], written: list[Path]
    ) -> list[ImageRow]:
        rel_dir = Path(now.strftime("%Y/%m/%d")) / rid
        folder = self.images_dir / rel_dir
        folder.mkdir(parents=True, exist_ok=False)  # a second record with the same id must not overwrite
        rows: list[ImageRow] = []

        def put(view: str, kind: str, name: str, data: bytes) -> None:
            path = folder / name
            _fsync_write(path, data)
            written.append(path)
            rows.append(
                ImageRow(
                    view=view,
                    kind=kind,
                    path=str(rel_dir / name),
                    sha256=hashlib.sha256(data).hexdigest(),
                    size_bytes=len(data),
                    kept_at=now,
                )
            )

        for view, data in images.items():
            if view not in ("top", "side"):
                raise ValueError(f"unknown view {view!r}")
            ext = _EXT.get(sniff_format(data) or "", "bin")
            put(view, "image", f"{view}.{ext}", bytes(data))
        for view, mask in masks.items():
            if view not in images:
                continue
            ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8), _MASK_PNG)
            if ok:
                put(view, "mask", f"{view}_mask.png", buf.tobytes())
        _fsync_dir(folder)
        return rows

    # -- retention -------------------------------------------------------------------------
    def prune(self, now: datetime | None = None) -> int:
        """Apply the retention policy; returns how many parts' images were removed."""
        pol = self.retention
        if pol.max_age_days is None and pol.max_count is None:
            return 0
        now = now or datetime.now(UTC)
        with self._sessions() as session, session.begin():
            doomed: set[str] = set()
            if pol.max_age_days is not None:
                cutoff = now - timedelta(days=pol.max_age_days)
                doomed.update(session.scalars(select(ImageRow.inspection_id).where(ImageRow.kept_at < cutoff)))
            if pol.max_count is not None:
                newest = (
                    select(ImageRow.inspection_id, func.max(ImageRow.kept_at).label("k"))
                    .group_by(ImageRow.inspection_id)
                    .subquery()
                )
                doomed.update(
                    session.scalars(
                        select(newest.c.inspection_id)
                        .order_by(newest.c.k.desc(), newest.c.inspection_id.desc())
                        .offset(pol.max_count)
                    )
                )
            if not doomed:
                return 0
            rows = list(session.scalars(select(ImageRow).where(ImageRow.inspection_id.in_(doomed))))
            paths = [self.images_dir / r.path for r in rows]
            for r in rows:
                session.delete(r)
        for p in paths:  # after the commit: a crash leaves files without rows, never rows without files
            p.unlink(missing_ok=True)
        for folder in {p.parent for p in paths}:
            shutil.rmtree(folder, ignore_errors=True)
        return len(doomed)

    # -- read ------------------------------------------------------------------------------
    @staticmethod
    def _record(row: InspectionRow) -> InspectionRecord:
        return InspectionRecord(
            id=row.id,
            recorded_at=_utc(row.recorded_at),
            request_id=row.request_id,
            meta=PartMeta(**{k: getattr(row, k) for k in PartMeta.model_fields}),
            result=load_result(row.result_json),
            kept_images=tuple(sorted({im.view for im in row.images if im.kind == "image"})),
        )

    def get(self, record_id: str) -> InspectionRecord:
        """One record by id; raises :class:`RecordNotFoundError`."""
        with self._sessions() as session:
            row = session.get(InspectionRow, record_id, options=[selectinload(InspectionRow.images)])
            if row is None:
                raise RecordNotFoundError(f"no inspection with id {record_id!r}")
            return self._record(row)

    def kept_files(self, record_id: str, view: str) -> dict[str, Path]:
        """The kept files of one view, by kind (``image``, ``mask``); empty when none are kept."""
        with self._sessions() as session:
            rows = session.scalars(
                select(ImageRow).where(ImageRow.inspection_id == record_id, ImageRow.view == view)
            ).all()
        return {r.kind: self.images_dir / r.path for r in rows if (self.images_dir / r.path).is_file()}

    def _filtered(
        self,
        *,
        lot: str | None = None,
        verdict: Verdict | str | None = None,
        spec_id: str | None = None,
        serial: str | None = None,
        station: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ):  # noqa: ANN202
        stmt = select(InspectionRow)
        if lot is not None:
            stmt = stmt.where(or_(*(getattr(InspectionRow, f) == lot for f in LOT_FIELDS)))
        if verdict is not None:
            stmt = stmt.where(InspectionRow.verdict == Verdict(verdict).value)
        if spec_id is not None:
            stmt = stmt.where(InspectionRow.spec_id == spec_id)
        if serial is not None:
            stmt = stmt.where(InspectionRow.serial == serial)
        if station is not None:
            stmt = stmt.where(InspectionRow.station == station)
        if since is not None:
            stmt = stmt.where(InspectionRow.recorded_at >= _utc(since))
        if until is not None:
            stmt = stmt.where(InspectionRow.recorded_at < _utc(until))
        return stmt

    def query(self, *, limit: int = 50, offset: int = 0, **filters: Any) -> Page:
        """Records matching all filters (``lot`` matches any of the four lot fields), newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        stmt = self._filtered(**filters)
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = session.scalars(
                stmt.options(selectinload(InspectionRow.images))
                .order_by(InspectionRow.recorded_at.desc(), InspectionRow.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return Page([self._record(r) for r in rows], total, limit, offset)

    def count(self, **filters: Any) -> int:
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(self._filtered(**filters).subquery())) or 0

    # -- export ----------------------------------------------------------------------------
    def export_csv(self, out: str | Path | IO[str], **filters: Any) -> int:
        """Write matching records as CSV (one row per part, oldest first); returns the row count.

        Columns: id, times, traceability, verdict, spec, model, calibration, counts, reasons, then
        ``<dimension>_<unit>`` and ``<dimension>_status`` per dimension found among the rows.
        """
        if isinstance(out, str | Path):
            with open(out, "w", newline="", encoding="utf-8") as f:
                return self.export_csv(f, **filters)
        stmt = self._filtered(**filters)
        with self._sessions() as session:
            ids = stmt.with_only_columns(InspectionRow.id).subquery()
            dims = session.execute(
                select(MeasurementRow.name, MeasurementRow.unit)
                .where(MeasurementRow.inspection_id.in_(select(ids.c.id)))
                .distinct()
                .order_by(MeasurementRow.name)
            ).all()
            head = list(_CSV_FIXED) + [c for name, unit in dims for c in (f"{name}_{unit}", f"{name}_status")]
            writer = csv.writer(out)
            writer.writerow(head)
            n = 0
            rows = session.scalars(
                stmt.options(selectinload(InspectionRow.measurements), selectinload(InspectionRow.defects))
                .order_by(InspectionRow.recorded_at, InspectionRow.id)
                .execution_options(yield_per=500)
            )
            for row in rows:
                writer.writerow(_csv_row(row, dims))
                n += 1
        return n

    def iter_ids(self) -> Iterator[str]:
        with self._sessions() as session:
            yield from session.scalars(select(InspectionRow.id).order_by(InspectionRow.recorded_at))

    def _session(self) -> Session:  # for tests and maintenance
        return self._sessions()


_CSV_FIXED = (
    "id", "recorded_at", "inspected_at", "request_id", "serial", "part_number", "revision", "melt_lot",
    "sinter_lot", "plating_lot", "inspection_lot", "station", "verdict", "spec_id", "spec_version", "model_name",
    "model_sha256", "calibration_id", "views", "n_defects", "defect_classes", "reasons", "error", "total_ms",
)


def _cell(v: Any) -> Any:
    """Text cells that a spreadsheet would run as a formula get a leading apostrophe."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return "" if v is None else v


def _csv_row(row: InspectionRow, dims: list) -> list[Any]:  # noqa: ANN001
    result = json.loads(row.result_json)
    reasons = " | ".join(r["message"] for r in result.get("reasons", ()))
    classes = sorted({d.class_name for d in row.defects})
    values: list[Any] = [
        row.id, _utc(row.recorded_at).isoformat(), _utc(row.inspected_at).isoformat(), row.request_id, row.serial,
        row.part_number, row.revision, row.melt_lot, row.sinter_lot, row.plating_lot, row.inspection_lot,
        row.station, row.verdict, row.spec_id, row.spec_version, row.model_name, row.model_sha256,
        row.calibration_id, row.views, len(row.defects), ";".join(classes), reasons, row.error, row.total_ms,
    ]
    by_name = {m.name: m for m in row.measurements}
    for name, _unit in dims:
        m = by_name.get(name)
        values.extend([None if m is None else m.value, None if m is None else m.status])
    return [_cell(v) for v in values]
