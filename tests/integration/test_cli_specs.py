"""``magspect specs list | show | validate``."""

import json
from importlib import resources

from typer.testing import CliRunner

from magspect.cli.main import app

runner = CliRunner()


def test_list_json_has_every_bundled_spec():
    res = runner.invoke(app, ["specs", "list", "--json"])
    assert res.exit_code == 0
    ids = {s["id"] for s in json.loads(res.stdout)}
    assert {"def-blk-20x10x5-nicuni", "ev-arc-r30-r25-40deg", "com-ring-od20-id10-t5"} <= ids


def test_show_table_and_json():
    res = runner.invoke(app, ["specs", "show", "def-blk-20x10x5-nicuni"])
    assert res.exit_code == 0 and "perpendicularity_deg" in res.stdout
    res = runner.invoke(app, ["specs", "show", "def-blk-20x10x5-nicuni", "--json"])
    assert json.loads(res.stdout)["dimensions"]["length"]["nominal"] == 20.0
    res = runner.invoke(app, ["specs", "show", "no-such-spec"])
    assert res.exit_code == 2 and "unknown spec" in res.output


def test_validate_bundled_file_ok(tmp_path):
    src = resources.files("magspect.specs") / "data" / "def-disc-d10-t3-nicuni.yaml"
    f = tmp_path / "disc.yaml"
    f.write_text(src.read_text())
    res = runner.invoke(app, ["specs", "validate", str(f)])
    assert res.exit_code == 0 and "ok" in res.stdout


def test_validate_malformed_names_file_line_field(tmp_path):
    src = (resources.files("magspect.specs") / "data" / "def-disc-d10-t3-nicuni.yaml").read_text()
    lines = src.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("diameter:"))
    lines[i] = "  diameter:  {nominal: 10.00, tol: -0.05}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(lines) + "\n")
    res = runner.invoke(app, ["specs", "validate", str(bad)])
    assert res.exit_code == 1
    assert f"bad.yaml:{i + 1}" in res.output and "dimensions.diameter" in res.output


def test_validate_broken_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("id: x\ndimensions: {length: [1, 2\n")
    res = runner.invoke(app, ["specs", "validate", str(bad), str(tmp_path / "missing.yaml")])
    assert res.exit_code == 1
    assert "broken.yaml:" in res.output and "missing.yaml" in res.output
