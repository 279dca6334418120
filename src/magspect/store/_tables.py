"""The record schema: one row per inspected part, its defects, measurements and kept images.

The full :class:`~magspect.types.InspectionResult` is kept as JSON too (``result_json``), so a record
can be read back exactly as it was returned; the columns beside it are for querying and export.
Changing a table here needs a new Alembic revision in ``migrations/versions``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class InspectionRow(Base):
    __tablename__ = "inspections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    inspected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(String(128))
    # traceability
    serial: Mapped[str | None] = mapped_column(String(128), index=True)
    part_number: Mapped[str | None] = mapped_column(String(128))
    revision: Mapped[str | None] = mapped_column(String(128))
    melt_lot: Mapped[str | None] = mapped_column(String(128), index=True)
    sinter_lot: Mapped[str | None] = mapped_column(String(128), index=True)
    plating_lot: Mapped[str | None] = mapped_column(String(128), index=True)
    inspection_lot: Mapped[str | None] = mapped_column(String(128), index=True)
    station: Mapped[str | None] = mapped_column(String(128))
    # what judged it
    verdict: Mapped[str] = mapped_column(String(16), index=True)
    spec_id: Mapped[str | None] = mapped_column(String(128), index=True)
    spec_version: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str | None] = mapped_column(String(256))
    model_sha256: Mapped[str | None] = mapped_column(String(64))
    model_provider: Mapped[str | None] = mapped_column(String(128))
    calibration_id: Mapped[str | None] = mapped_column(String(128))
    views: Mapped[str] = mapped_column(String(64))  # comma-separated, in the order given
    error: Mapped[str | None] = mapped_column(Text)
    total_ms: Mapped[float | None] = mapped_column(Float)
    timings_json: Mapped[str] = mapped_column(Text)
    result_json: Mapped[str] = mapped_column(Text)

    defects: Mapped[list[DefectRow]] = relationship(
        back_populates="inspection", cascade="all, delete-orphan", order_by="DefectRow.idx"
    )
    measurements: Mapped[list[MeasurementRow]] = relationship(
        back_populates="inspection", cascade="all, delete-orphan", order_by="MeasurementRow.name"
    )
    images: Mapped[list[ImageRow]] = relationship(back_populates="inspection", cascade="all, delete-orphan")


class DefectRow(Base):
    __tablename__ = "defects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    class_name: Mapped[str] = mapped_column(String(32), index=True)
    subtype: Mapped[str | None] = mapped_column(String(32))
    zone: Mapped[str] = mapped_column(String(32))
    view: Mapped[str] = mapped_column(String(16))
    length_mm: Mapped[float] = mapped_column(Float)
    width_mm: Mapped[float] = mapped_column(Float)
    depth_mm: Mapped[float | None] = mapped_column(Float)
    area_mm2: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)
    edge_index: Mapped[int | None] = mapped_column(Integer)

    inspection: Mapped[InspectionRow] = relationship(back_populates="defects")


class MeasurementRow(Base):
    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(8))
    value: Mapped[float | None] = mapped_column(Float)
    nominal: Mapped[float] = mapped_column(Float)
    tol_minus: Mapped[float] = mapped_column(Float)
    tol_plus: Mapped[float] = mapped_column(Float)
    uncertainty: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    view: Mapped[str | None] = mapped_column(String(16))

    inspection: Mapped[InspectionRow] = relationship(back_populates="measurements")


class ImageRow(Base):
    """An image (or class mask) kept on disk for a part, until the retention policy removes it."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), index=True)
    view: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # "image" (as uploaded) or "mask" (class ids, PNG)
    path: Mapped[str] = mapped_column(String(512))  # relative to the store's image folder
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    kept_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    inspection: Mapped[InspectionRow] = relationship(back_populates="images")


Index("ix_inspections_recorded_id", InspectionRow.recorded_at, InspectionRow.id)
