"""Inspection records: SQLite (WAL) by default, PostgreSQL by URL, Alembic-migrated on open.

Used by the REST service and the camera station alike::

    store = RecordStore()                       # $XDG_DATA_HOME/magspect/records.db
    rec = store.add(result, PartMeta(serial="S1", melt_lot="M7"), {"top": png_bytes})
    store.get(rec.id); store.query(lot="M7", verdict="REJECT"); store.export_csv("out.csv")
"""

from magspect.store._records import LOT_FIELDS, InspectionRecord, Page, PartMeta
from magspect.store._retention import RetentionPolicy
from magspect.store._store import MAX_PAGE, RecordNotFoundError, RecordStore, StoreError, default_data_dir

__all__ = [
    "LOT_FIELDS",
    "MAX_PAGE",
    "InspectionRecord",
    "Page",
    "PartMeta",
    "RecordNotFoundError",
    "RecordStore",
    "RetentionPolicy",
    "StoreError",
    "default_data_dir",
]
