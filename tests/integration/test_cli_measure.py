"""``magspect measure``: JSON contract, table, fail-closed paths."""

import json

import cv2
import pytest
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.datasets.targets import render_silhouette
from magspect.inspect.calibration import with_scale

runner = CliRunner()
SPEC = "def-blk-20x10x5-nicuni"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("measure")
    top = render_silhouette("block", {"length": 20.02, "width": 9.99, "chamfer": 0.2}, um_per_px=25.0,
                            size_wh=(1000, 1000), angle_deg=3.0)
    side = render_silhouette("block", {"length": 20.02, "width": 5.01}, um_per_px=25.0, size_wh=(1000, 400))
    cv2.imwrite(str(d / "p1_top.png"), top.image)
    cv2.imwrite(str(d / "p1_side.png"), side.image)
    cv2.imwrite(str(d / "blank.png"), top.image * 0 + 200)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return d


def test_json_one_object_with_value_mm(images):
    res = runner.invoke(app, ["measure", str(images / "p1_top.png"), "--spec", SPEC, "--um-per-px", "25", "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert set(obj["measurements"]) == {"length", "width", "chamfer", "perpendicularity_deg"}
    assert obj["measurements"]["length"]["value_mm"] == pytest.approx(20.02, abs=0.003)
    assert obj["measurements"]["width"]["status"] == "ok"
    assert obj["error"] is None


def test_side_view_from_file_name_and_calibration(images, tmp_path):
    cal = with_scale(with_scale(None, "top", 25.0), "side", 25.0)
    cal.save(tmp_path / "c.json")
    res = runner.invoke(app, ["measure", str(images / "p1_side.png"), "--spec", SPEC, "--calibration",
                              str(tmp_path / "c.json"), "--json"])
    assert res.exit_code == 0, res.output
    obj = json.loads(res.stdout)
    assert obj["view"] == "side" and obj["calibration_id"] == cal.id
    assert obj["measurements"]["thickness"]["value_mm"] == pytest.approx(5.01, abs=0.003)


def test_table_output(images):
    res = runner.invoke(app, ["measure", str(images / "p1_top.png"), "--spec", SPEC, "--um-per-px", "25"])
    assert res.exit_code == 0
    assert "length" in res.stdout and "perpendicularity" in res.stdout


def test_no_scale_fails_closed(images):
    res = runner.invoke(app, ["measure", str(images / "p1_top.png"), "--spec", SPEC])
    assert res.exit_code == 2
    assert "no scale" in res.output


def test_calibration_without_the_view(images, tmp_path):
    with_scale(None, "top", 25.0).save(tmp_path / "c.json")
    res = runner.invoke(app, ["measure", str(images / "p1_side.png"), "--spec", SPEC, "--calibration",
                              str(tmp_path / "c.json")])
    assert res.exit_code == 2 and "side" in res.output


@pytest.mark.parametrize("name", ["blank.png", "corrupt.png", "missing.png"])
def test_unmeasurable_image_is_not_measured(images, name):
    res = runner.invoke(app, ["measure", str(images / name), "--spec", SPEC, "--um-per-px", "25", "--json"])
    assert res.exit_code == 1
    obj = json.loads(res.stdout)
    assert obj["error"]
    assert all(m["status"] == "not_measured" and m["value_mm"] is None for m in obj["measurements"].values())


def test_unknown_spec(images):
    res = runner.invoke(app, ["measure", str(images / "p1_top.png"), "--spec", "nope", "--um-per-px", "25"])
    assert res.exit_code == 2 and "unknown spec" in res.output
