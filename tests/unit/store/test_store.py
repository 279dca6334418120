import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import text

from magspect.store import PartMeta, RecordNotFoundError, RetentionPolicy
from magspect.types import Verdict

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
META = PartMeta(serial="SN-0001", part_number="PN-20x10x5", revision="C", melt_lot="M-17", sinter_lot="S-3",
                plating_lot="Z-9", inspection_lot="I-1", station="lab-2")


def test_round_trip_keeps_the_result_exactly(store, make_result):
    result = make_result(Verdict.REJECT, defects=2)
    rec = store.add(result, META, request_id="req-1")
    back = store.get(rec.id)
    assert back.result == result
    assert back.meta == META
    assert back.request_id == "req-1"
    assert back.recorded_at == rec.recorded_at
    assert back.result.model.sha256 == "ab" * 32 and back.result.calibration_id == "cal-7"


def test_defects_and_measurements_have_their_own_rows(store, make_result):
    rec = store.add(make_result(Verdict.REJECT, defects=3), META)
    with store._session() as s:
        n_def = s.execute(text("SELECT count(*) FROM defects WHERE inspection_id = :i"), {"i": rec.id}).scalar()
        depth = s.execute(text("SELECT max(depth_mm) FROM defects")).scalar()
        length = s.execute(text("SELECT value FROM measurements WHERE name = 'length'")).scalar()
        row = s.execute(text("SELECT melt_lot, spec_id, model_sha256, verdict, total_ms FROM inspections")).one()
    assert n_def == 3 and depth == pytest.approx(0.42) and length == pytest.approx(20.01)
    assert tuple(row) == ("M-17", "com-blk-20x10x5-zn", "ab" * 32, "REJECT", 12.5)


def test_unknown_id_raises(store):
    with pytest.raises(RecordNotFoundError):
        store.get("0" * 32)


def test_record_is_visible_to_a_fresh_connection_when_add_returns(store_factory, make_result):
    a = store_factory()
    rec = a.add(make_result(), META)
    b = store_factory()  # a new engine: what another process would see
    assert b.get(rec.id).result.verdict == Verdict.PASS


def test_query_filters_and_pages_newest_first(store, make_result):
    ids = []
    for i in range(7):
        verdict = Verdict.REJECT if i % 2 else Verdict.PASS
        lot = PartMeta(serial=f"S{i}", melt_lot="M-A" if i < 4 else "M-B", sinter_lot="S-X" if i == 6 else None)
        ids.append(store.add(make_result(verdict), lot).id)
    page = store.query(lot="M-A", limit=3)
    assert page.total == 4 and [r.id for r in page.items] == ids[3::-1][:3]
    page2 = store.query(lot="M-A", limit=3, offset=3)
    assert [r.id for r in page2.items] == [ids[0]]
    assert store.query(lot="S-X").total == 1  # any lot field matches
    assert store.query(verdict="REJECT").total == 3
    assert store.query(lot="M-B", verdict=Verdict.PASS).total == 2
    assert store.query(serial="S5").items[0].id == ids[5]
    assert store.query(since=datetime.now(UTC) + timedelta(hours=1)).total == 0
    with pytest.raises(ValueError):
        store.query(limit=0)


def test_images_kept_only_for_rejected_parts(store, make_result):
    ok = store.add(make_result(Verdict.PASS), META, {"top": PNG})
    bad = store.add(make_result(Verdict.REJECT), META, {"top": PNG})
    assert ok.kept_images == () and store.kept_files(ok.id, "top") == {}
    files = store.kept_files(bad.id, "top")
    assert files["image"].read_bytes() == PNG and files["image"].suffix == ".png"
    assert store.get(bad.id).kept_images == ("top",)


def test_retention_by_count_and_by_age(store_factory, make_result):
    store = store_factory(retention=RetentionPolicy(max_age_days=None, max_count=2))
    recs = [store.add(make_result(Verdict.REJECT), META, {"top": PNG}) for _ in range(4)]
    kept = [bool(store.kept_files(r.id, "top")) for r in recs]
    assert kept == [False, False, True, True]
    assert store.get(recs[0].id).kept_images == ()  # the record stays, only its images go
    store.retention = RetentionPolicy(max_age_days=1, max_count=None)
    assert store.prune(now=datetime.now(UTC) + timedelta(days=2)) == 2
    assert not any(store.kept_files(r.id, "top") for r in recs)
    assert not any(p.is_file() for p in store.images_dir.rglob("*"))


def test_failed_commit_removes_the_files_it_wrote(store, make_result):
    first = store.add(make_result(Verdict.REJECT), META, {"top": PNG}, record_id="a" * 32)
    with pytest.raises(Exception):  # noqa: B017 - duplicate id: the folder exists or the commit fails
        store.add(make_result(Verdict.REJECT), META, {"top": PNG + b"x"}, record_id="a" * 32)
    assert store.kept_files(first.id, "top")["image"].read_bytes() == PNG


def test_csv_export(store, make_result):
    store.add(make_result(Verdict.PASS, length=20.02), PartMeta(serial="=HYPERLINK(1)", melt_lot="M-1"))
    store.add(make_result(Verdict.REJECT, defects=1), PartMeta(serial="S2", melt_lot="M-2"))
    buf = io.StringIO()
    assert store.export_csv(buf) == 2
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert [r["verdict"] for r in rows] == ["PASS", "REJECT"]  # oldest first
    assert rows[0]["serial"] == "'=HYPERLINK(1)"  # no formula injection in a spreadsheet
    assert float(rows[0]["length_mm"]) == pytest.approx(20.02) and rows[0]["length_status"] == "ok"
    assert rows[1]["n_defects"] == "1" and rows[1]["defect_classes"] == "chip"
    assert "chip on edge 3" in rows[1]["reasons"]
    buf = io.StringIO()
    assert store.export_csv(buf, lot="M-2") == 1


def test_part_meta_is_checked():
    with pytest.raises(ValidationError):
        PartMeta(serial="x" * 129)
    with pytest.raises(ValidationError):
        PartMeta(melt_lot="a\nb")
    with pytest.raises(ValidationError):
        PartMeta(colour="red")
    assert PartMeta(serial="  ").serial is None
