"""`magspect inspect` on a generated folder with a tiny model: JSON per part, report, overlays, errors."""

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.inspect.parts_input import PartsInputError, collect_parts

runner = CliRunner()


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "parts"
    r = runner.invoke(app, ["synth", "--n", "2", "--seed", "5", "--out", str(out), "--size", "256",
                            "--spec", "def-blk-20x10x5-nicuni"])
    assert r.exit_code == 0, r.output
    return out


def test_json_report_and_overlays(synth_dir, const_model, tmp_path):
    report, overlays = tmp_path / "r.html", tmp_path / "ov"
    r = runner.invoke(app, ["inspect", str(synth_dir), "--spec", "def-blk-20x10x5-nicuni", "--model",
                            str(const_model), "--json", "--report", str(report), "--overlays", str(overlays)])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert len(lines) == 2
    for obj in lines:
        assert obj["verdict"] in ("PASS", "REJECT", "REVIEW")
        assert obj["model"]["name"] == "const-fp32" and obj["spec"]["id"] == "def-blk-20x10x5-nicuni"
        assert set(obj["views"]) == {"top", "side"}
    html = report.read_text()
    assert "Totals: 2 parts" in html and "true verdict" in html and html.count("<section class='card'>") == 2
    pngs = sorted(p.name for p in overlays.iterdir())
    assert len(pngs) == 4 and all(p.endswith("_overlay.png") for p in pngs)
    assert cv2.imread(str(overlays / pngs[0])).shape == (256, 256, 3)


def test_cli_errors_are_one_line(synth_dir, const_model, tmp_path):
    r = runner.invoke(app, ["inspect", str(synth_dir), "--spec", "nope", "--model", str(const_model)])
    assert r.exit_code == 2 and "unknown spec 'nope'" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["inspect", str(tmp_path / "missing.png"), "--spec", "def-blk-20x10x5-nicuni",
                            "--model", str(const_model)])
    assert r.exit_code == 2 and "no such file or folder" in r.output
    r = runner.invoke(app, ["inspect", str(synth_dir), "--spec", "def-blk-20x10x5-nicuni",
                            "--model", str(tmp_path / "none.onnx")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_unreadable_image_is_rejected_not_crashed(const_model, tmp_path):
    bad = tmp_path / "p1_top.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    r = runner.invoke(app, ["inspect", str(bad), "--spec", "def-blk-20x10x5-nicuni", "--model", str(const_model),
                            "--um-per-px", "25", "--json"])
    assert r.exit_code == 0, r.output
    obj = json.loads(r.output.strip().splitlines()[-1])
    assert obj["verdict"] == "REJECT" and "image unreadable" in obj["error"]


def test_grouping_views_and_backlights(tmp_path):
    for name in ("a_top.png", "a_side.png", "a_top_backlight.png", "a_side_dome.png", "b.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((40, 40), np.uint8))
    parts = {p.part_id: p for p in collect_parts([tmp_path])}
    assert set(parts) == {"a", "b"}  # a second light's image is a companion, not a part
    assert set(parts["a"].views) == {"top", "side"} and set(parts["a"].backlights) == {"top"}
    assert parts["a"].second_lights == {"side": tmp_path / "a_side_dome.png"}
    assert set(parts["b"].views) == {"top"}
    (tmp_path / "sub").mkdir()
    with pytest.raises(PartsInputError, match="no images"):
        collect_parts([tmp_path / "sub"])


def test_second_light_images_are_not_parts(const_model, tmp_path):
    out = tmp_path / "two"
    r = runner.invoke(app, ["synth", "--n", "1", "--seed", "5", "--out", str(out), "--size", "256",
                            "--spec", "def-blk-20x10x5-nicuni", "--second-lighting", "dome"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["inspect", str(out), "--spec", "def-blk-20x10x5-nicuni", "--model", str(const_model),
                            "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.startswith("{")]
    assert len(lines) == 1 and set(lines[0]["views"]) == {"top", "side"}
    assert "2 second-light image(s)" in r.output
