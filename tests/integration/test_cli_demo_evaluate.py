"""`magspect demo` and `magspect evaluate` end to end on a handful of parts (a constant model: fast)."""

import json

import pytest
from typer.testing import CliRunner

from magspect.cli.main import app
from magspect.inspect.defect_measure import CHIP_JOIN_PX, CRACK_JOIN_PX
from magspect.inspect.offpart import OFF_PART_RUN_PX

runner = CliRunner()


def test_demo_writes_report_results_and_summary(const_model, tmp_path):
    out = tmp_path / "demo"
    r = runner.invoke(app, ["demo", "--n", "2", "--model", str(const_model), "--out", str(out),
                            "--spec", "def-blk-20x10x5-nicuni"])
    assert r.exit_code == 0, r.output
    assert "2 parts: truth vs magspect" in r.output and "escape rate" in r.output
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(x["true_verdict"] in ("PASS", "REJECT") for x in lines)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("escape_rate", "false_reject_rate", "review_rate", "parts_per_s"):
        assert 0 <= summary[key] <= (1 if key != "parts_per_s" else 1e6)
    html = (out / "report.html").read_text()
    assert "Totals: 2 parts" in html and "true verdict" in html
    assert len(list((out / "images").glob("*_backlight.png"))) == 4


def test_evaluate_suite_and_data_json_keys(const_model, tmp_path):
    js = tmp_path / "suite.json"
    r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v1", "--n", "2", "--model", str(const_model),
                            "--json", str(js)])
    assert r.exit_code == 0, r.output
    d = json.loads(js.read_text())
    assert d["n_parts"] == 2 and {"escape_rate", "false_reject_rate", "review_rate", "parts_per_s"} <= set(d)
    assert d["defect_threshold"] == 0.0  # the model's manifest
    assert d["chip_join_px"] == CHIP_JOIN_PX and d["off_part_run_px"] == OFF_PART_RUN_PX  # Inspector's defaults
    assert d["crack_join_px"] == CRACK_JOIN_PX
    assert len(d["reviewed_parts"]) == round(d["review_rate"] * d["n_parts"])  # which parts, to look at them
    assert sum(v["n_parts"] for v in d["per_spec"].values()) == 2  # the rates again, per spec
    # the decision bands in use: none from this model, no verifier for it
    assert d["defect_length_uncertainty_px"] == {} and d["verifier_review_below"] is None and d["verifier"] is None
    causes = d["reported_false_defects_by_cause"]
    assert d["reported_false_defects_per_100_parts"] == pytest.approx(100 * sum(causes.values()) / 2)
    assert 0 <= d["false_defects_on_nuisances_per_100_parts"] <= d["reported_false_defects_per_100_parts"]
    assert "false defects reported:" in r.output and "per 100 parts" in r.output
    r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--split", "val", "--n", "1", "--model",
                            str(const_model), "--defect-threshold", "0.7", "--chip-join-px", "0",
                            "--crack-join-px", "3", "--off-part-run-px", "0", "--json", str(js)])
    assert r.exit_code == 0, r.output
    d = json.loads(js.read_text())
    assert d["suite"] == "magsynth-v2" and d["split"] == "val" and d["defect_threshold"] == 0.7
    assert d["chip_join_px"] == 0 and d["off_part_run_px"] == 0 and d["crack_join_px"] == 3
    # a real-data style mask folder
    import cv2
    import numpy as np

    for label, defect in (("MT_Crack", True), ("MT_Free", False)):
        folder = tmp_path / "mt" / label / "Imgs"
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / "a.jpg"), np.full((64, 80), 100, np.uint8))
        m = np.zeros((64, 80), np.uint8)
        if defect:
            m[10:20, 10:30] = 255
        cv2.imwrite(str(folder / "a.png"), m)
    jd = tmp_path / "data.json"
    r = runner.invoke(app, ["evaluate", "--data", f"mask-folder:{tmp_path / 'mt'}", "--model", str(const_model),
                            "--json", str(jd)])
    assert r.exit_code == 0, r.output
    d = json.loads(jd.read_text())
    assert d["n_images"] == 2 and {"image_auroc", "mean_iou", "iou_per_class"} <= set(d)
    assert d["iou_per_class"]["crack"] == 0.0  # the constant model never calls a crack
    r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v1", "--data", "x"])
    assert r.exit_code == 2 and "exactly one of" in r.output


def test_evaluate_under_one_front_light(const_model, tmp_path):
    """--lighting re-images the suite's parts under one front light: magsynth-v1's first val part has
    a view lit only from behind (its surface not visible: REVIEW at best); under dark-field light it
    has none. The figures say which light they were measured under."""
    js = tmp_path / "e.json"
    counts = {}
    for light in (None, "darkfield"):
        extra = [] if light is None else ["--lighting", light]
        r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v1", "--split", "val", "--n", "1", "--model",
                                str(const_model), "--verifier", "none", "--json", str(js), *extra])
        assert r.exit_code == 0, r.output
        d = json.loads(js.read_text())
        assert d["lighting"] == (light or "suite")
        counts[light] = d["parts_with_surface_not_visible"]
    assert counts == {None: 1, "darkfield": 0}
    assert "under darkfield light" in r.output
    for bad, needle in ((["--lighting", "backlight"], "front light"), (["--lighting", "uv"], "front light")):
        r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--n", "1", *bad])
        assert r.exit_code != 0 and needle in r.output, r.output
    r = runner.invoke(app, ["evaluate", "--data", "mask-folder:x", "--lighting", "dome"])
    assert r.exit_code != 0 and "with --suite" in r.output


def test_evaluate_data_with_class_id_masks(const_model, tmp_path):
    """images/ + masks/ layout: which images are defective comes from the masks themselves."""
    import cv2
    import numpy as np

    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    for stem, defect in (("a", True), ("b", False)):
        cv2.imwrite(str(tmp_path / "d" / "images" / f"{stem}.png"), np.full((64, 64), 90, np.uint8))
        m = np.ones((64, 64), np.uint8)
        if defect:
            m[5:9, 5:30] = 2
        cv2.imwrite(str(tmp_path / "d" / "masks" / f"{stem}.png"), m)
    out = tmp_path / "r.json"
    r = runner.invoke(app, ["evaluate", "--data", f"mask-folder:{tmp_path / 'd'}", "--model", str(const_model),
                            "--json", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    assert d["n_defective"] == 1 and d["image_auroc"] == 0.5  # one of each; a constant model cannot rank
