"""``magspect synth``: writes a dataset; refuses a non-empty folder; bad options give one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magspect.cli.main import app

runner = CliRunner()


def test_synth_writes_images_masks_annotations_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    res = runner.invoke(app, ["synth", "--n", "2", "--seed", "5", "--out", str(out), "--size", "128",
                              "--spec", "com-blk-20x10x5-zn", "--view", "top"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "com-blk-20x10x5-zn-s5_top.png", "com-blk-20x10x5-zn-s5_top_backlight.png",
        "com-blk-20x10x5-zn-s6_top.png", "com-blk-20x10x5-zn-s6_top_backlight.png"]
    rec = json.loads((out / "truth.jsonl").read_text().splitlines()[0])
    assert rec["backlight_image"] == "images/com-blk-20x10x5-zn-s5_top_backlight.png"
    assert len(list((out / "masks").iterdir())) == 4
    lines = (out / "truth.jsonl").read_text().splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [5, 6]
    assert json.loads((out / "annotations.json").read_text())["images"][0]["width"] == 128


def test_synth_writes_the_second_light_beside_the_first(tmp_path: Path) -> None:
    import cv2

    base = ["synth", "--n", "1", "--seed", "5", "--size", "128", "--spec", "com-blk-20x10x5-zn", "--view", "top",
            "--lighting", "darkfield"]
    assert runner.invoke(app, [*base, "--out", str(tmp_path / "one")]).exit_code == 0
    res = runner.invoke(app, [*base, "--second-lighting", "dome", "--out", str(tmp_path / "two")])
    assert res.exit_code == 0, res.output
    rec = json.loads((tmp_path / "two" / "truth.jsonl").read_text())
    assert rec["second_image"] == "images/com-blk-20x10x5-zn-s5_top_dome.png" and rec["second_lighting"] == "dome"
    first = "images/com-blk-20x10x5-zn-s5_top.png"
    assert (tmp_path / "one" / first).read_bytes() == (tmp_path / "two" / first).read_bytes()
    second = cv2.imread(str(tmp_path / "two" / rec["second_image"]), cv2.IMREAD_UNCHANGED)
    assert second.shape == (128, 128) and second.mean() > cv2.imread(str(tmp_path / "two" / first), 0).mean()
    res = runner.invoke(app, [*base, "--second-lighting", "backlight", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "second_lighting must be one of" in res.output


def test_synth_is_reproducible(tmp_path: Path) -> None:
    args = ["synth", "--n", "1", "--seed", "9", "--size", "96", "--spec", "def-disc-d10-t3-nicuni"]
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b")]).exit_code == 0
    for name in ("images/def-disc-d10-t3-nicuni-s9_top.png", "images/def-disc-d10-t3-nicuni-s9_side.png",
                 "truth.jsonl", "annotations.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_synth_refuses_non_empty_dir_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("x")
    res = runner.invoke(app, ["synth", "--n", "1", "--out", str(tmp_path), "--size", "96"])
    assert res.exit_code == 2
    assert "not empty" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["synth", "--n", "1", "--out", str(tmp_path), "--size", "96", "--overwrite"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("bad,words", [
    (["--lighting", "sunlight"], "lighting"),
    (["--bit-depth", "12"], "bit_depth"),
    (["--view", "front"], "views"),
    (["--spec", "no-such-spec"], "unknown spec"),
    (["--coco", "xml"], "--coco"),
    (["--size", "10"], "size_px"),
    (["--force-defect", "dent"], "force_defect"),
    (["--suite", "magsynth-v1"], "--split"),
    (["--suite", "magsynth-v9", "--split", "test"], "unknown suite"),
])
def test_bad_options_give_one_line_errors(tmp_path: Path, bad: list[str], words: str) -> None:
    res = runner.invoke(app, ["synth", "--n", "1", "--out", str(tmp_path / "o"), *bad])
    assert res.exit_code == 2, res.output
    assert words in res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_synth_suite_split_uses_the_fixed_recipe(tmp_path: Path) -> None:
    out = tmp_path / "val"
    res = runner.invoke(app, ["synth", "--suite", "magsynth-v1", "--split", "val", "--n", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = json.loads((out / "truth.jsonl").read_text().splitlines()[0])
    assert rec["seed"] == 1_000_000 and rec["image_hw"] == [1024, 1024]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["description"] == "magsynth-v1 val"
    res = runner.invoke(app, ["synth", "--suite", "magsynth-v1", "--split", "val", "--size", "256",
                              "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--size" in res.output and "size_px" not in res.output
