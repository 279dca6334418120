import csv
import io

from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.store import PartMeta, RecordStore
from magspect.types import Verdict


def test_records_export_show_prune(tmp_path, make_result):
    with RecordStore(data_dir=tmp_path) as store:
        a = store.add(make_result(Verdict.PASS), PartMeta(serial="S1", melt_lot="M-1"))
        store.add(make_result(Verdict.REJECT), PartMeta(serial="S2", melt_lot="M-2"), {"top": b"\x89PNG\r\n\x1a\n"})
    runner = CliRunner()
    r = runner.invoke(app, ["records", "export", "-", "--data-dir", str(tmp_path), "--lot", "M-1"])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["serial"] for x in rows] == ["S1"]
    out = tmp_path / "all.csv"
    r = runner.invoke(app, ["records", "export", str(out), "--data-dir", str(tmp_path), "--verdict", "reject"])
    assert r.exit_code == 0 and len(list(csv.DictReader(out.open()))) == 1
    r = runner.invoke(app, ["records", "show", a.id, "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and '"serial": "S1"' in r.stdout
    r = runner.invoke(app, ["records", "show", "f" * 32, "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    r = runner.invoke(app, ["records", "prune", "--data-dir", str(tmp_path), "--max-count", "0"])
    assert r.exit_code == 0 and "removed the kept images of 1 parts" in r.stdout
    r = runner.invoke(app, ["records", "export", "-", "--data-dir", str(tmp_path), "--verdict", "maybe"])
    assert r.exit_code == 2
