"""``magspect train-verifier`` end to end on a few synthetic parts with the bundled model, then
``magspect evaluate`` with the verifier it wrote."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from magspect.cli.main import app

pytest.importorskip("torch")
runner = CliRunner()


def test_train_verifier_mines_trains_exports_and_evaluate_uses_it(tmp_path):
    out = tmp_path / "v"
    from magspect.inspect.backend import Segmenter, bundled_model_path
    from magspect.inspect.verifier import Verifier

    args = ["train-verifier", "--out", str(out), "--parts", "30", "--val-parts", "10", "--epochs", "2",
            "--also-for", str(bundled_model_path(int8=True)),
            "--workers", "2", "--no-progress", "--patch-channels", "6",
            "--min-recall", "0.9", "--min-recall-rejectable", "0.9"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "real defects" in r.output and "dismisses" in r.output
    assert len(list((out / "mined").glob("chunk-*.npz"))) == 2  # 30 parts in chunks of 25
    assert (out / "verifier.onnx").is_file() and (out / "curves.png").is_file() and (out / "verifier.pt").is_file()
    man = Verifier(out / "verifier.onnx").manifest
    assert man.fits(Segmenter(bundled_model_path(), warmup=False).sha256)
    assert man.fits(Segmenter(bundled_model_path(int8=True), warmup=False).sha256)
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_val"] > 0 and 0.0 <= rep["keep_threshold"] < 1.0
    assert man.training["lighting"] == "suite"
    # candidates mined under the suite's lights are not mixed with dark-field ones; a light must exist
    r = runner.invoke(app, [*args, "--lighting", "darkfield"])
    assert r.exit_code == 2 and "mined under the suite draw of lights, not darkfield" in " ".join(r.output.split())
    r = runner.invoke(app, [*args[:2], str(tmp_path / "uv"), *args[3:], "--lighting", "ultraviolet"])
    assert r.exit_code == 2 and "--lighting" in r.output and "front light" in r.output
    # a second run resumes: nothing to mine again
    r2 = runner.invoke(app, [*args[:-4], "--epochs", "1", "--min-recall", "0.9", "--min-recall-rejectable", "0.9"])
    assert r2.exit_code == 0, r2.output
    # another model's candidates added (here the same run's, so twice as many)
    import re
    import shutil

    out3 = tmp_path / "v3"
    shutil.copytree(out / "mined", out3 / "mined")
    args3 = [*args[:2], str(out3), *args[3:-4], "--epochs", "1", "--min-recall", "0.9",
             "--min-recall-rejectable", "0.9", "--extra-mined", str(out / "mined")]
    r3 = runner.invoke(app, args3)
    assert r3.exit_code == 0, r3.output
    n1 = int(re.search(r"(\d+) candidates from", r2.output).group(1))
    # the same parts: the extra candidates on the 10 held-out parts stay out of training and validation
    import numpy as np

    from magspect.training.verifier_data import load_mined

    own = load_mined(out / "mined")
    held = own["seed"] >= 300_020  # the last 10 of the parts seeded 300000..300029
    on_held = int(held.sum())
    assert 0 < on_held < n1
    said = " ".join(r3.output.split())  # the console wraps long lines
    assert f"+ {n1 - on_held} candidates of other runs from {len(set(own['seed'][~held]))} parts" in said
    assert f"{on_held} of theirs on the held-out parts left out" in said
    man3 = Verifier(out3 / "verifier.onnx").manifest.training
    assert man3["extra_mined"] == [str(out / "mined")] and man3["extra"]["n_left_out"] == on_held
    assert json.loads((out3 / "report.json").read_text())["n_val"] == on_held  # validation: own candidates only
    # candidates mined on other seeds (here the same chunks with their seeds moved) are all added
    moved = tmp_path / "moved"
    moved.mkdir()
    for chunk in sorted((out / "mined").glob("chunk-*.npz")):
        arrays = dict(np.load(chunk))
        arrays["seed"] = arrays["seed"] + 50_000
        np.savez(moved / chunk.name, **arrays)
    r3b = runner.invoke(app, [*args3[:-1], str(moved)])
    assert r3b.exit_code == 0, r3b.output
    said = " ".join(r3b.output.split())
    assert f"+ {n1} candidates of other runs from" in said and " 0 of theirs on the held-out" in said
    assert json.loads((out3 / "report.json").read_text())["n_val"] == on_held
    r4 = runner.invoke(app, [*args3[:-1], str(tmp_path / "nothing")])
    assert r4.exit_code == 2 and "no mined chunks" in r4.output
    # fine-tuned from the first run's verifier (its mined parts again: nothing to mine)
    r5 = runner.invoke(app, [*args3[:-2], "--init-from", str(out / "verifier.onnx")])
    assert r5.exit_code == 0, r5.output
    tuned = Verifier(out3 / "verifier.onnx").manifest.training
    from magspect.inspect.backend import sha256_file

    assert tuned["init_from"] == {"file": "verifier.onnx", "sha256": sha256_file(out / "verifier.onnx")}
    assert tuned["lr"] == pytest.approx(3e-4) and "--init-from" in tuned["command"]
    # the patches show where the part is (6 channels, asked for); the bundled verifiers' layout (4) is
    # the default, and a verifier of that layout fine-tunes on 6-channel candidates, its first layer widened
    assert json.loads((out / "mined" / "mined.json").read_text())["channels"] == 6
    assert Verifier(out / "verifier.onnx").channels == 6 and tuned["patch_channels"] == 6
    out4 = tmp_path / "v4"
    r6 = runner.invoke(app, [*args[:2], str(out4), *args[3:-4], "--epochs", "1", "--min-recall", "0.9",
                             "--min-recall-rejectable", "0.9", "--patch-channels", "4"])
    assert r6.exit_code == 0, r6.output
    assert json.loads((out4 / "mined" / "mined.json").read_text())["channels"] == 4
    assert Verifier(out4 / "verifier.onnx").channels == 4
    assert Verifier(out4 / "verifier.onnx").manifest.training["patch_channels"] == 4
    assert "--patch-channels 6" in tuned["command"]
    r6b = runner.invoke(app, [*args3[:-2], "--init-from", str(out4 / "verifier.onnx")])
    assert r6b.exit_code == 0, r6b.output
    assert Verifier(out3 / "verifier.onnx").channels == 6
    # candidates of the two layouts are not mixed, and a folder is not resumed in the other layout
    four = tmp_path / "four"
    four.mkdir()
    for chunk in sorted((out / "mined").glob("chunk-*.npz")):
        arrays = dict(np.load(chunk))
        arrays["patches"] = arrays["patches"][:, :4]
        np.savez(four / chunk.name, **arrays)
    r7 = runner.invoke(app, [*args3[:-1], str(four)])
    said = " ".join(r7.output.split())
    assert r7.exit_code == 2 and f"--extra-mined {four}: 4-channel candidates" in said, r7.output
    r8 = runner.invoke(app, [*args[:-4], "--epochs", "1", "--patch-channels", "4"])
    said = " ".join(r8.output.split())
    assert r8.exit_code == 2 and "holds 6-channel candidates, not 4" in said, r8.output

    ev = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--n", "2", "--verifier", str(out / "verifier.onnx"),
                             "--json", str(tmp_path / "ev.json")])
    assert ev.exit_code == 0, ev.output
    summary = json.loads((tmp_path / "ev.json").read_text())
    assert summary["verifier"]["name"] == "verifier_cnn"
    assert set(summary["verifier_dismissed"]) == {"real", "look_alike"}


def test_train_verifier_refuses_bad_arguments(tmp_path):
    r = runner.invoke(app, ["train-verifier", "--out", str(tmp_path / "v"), "--parts", "20", "--val-parts", "30"])
    assert r.exit_code == 2 and "must be more than" in r.output
    r = runner.invoke(app, ["train-verifier", "--out", str(tmp_path / "v"), "--model", str(tmp_path / "no.onnx")])
    assert r.exit_code == 2 and "does not exist" in r.output
    from magspect.inspect.backend import bundled_model_path

    subtypes = bundled_model_path().with_name("default-subtypes.onnx")
    for init, says in ((tmp_path / "no.onnx", "no such file"), (subtypes, "a verifier has one"),
                       (bundled_model_path(), "not a candidate network")):
        r = runner.invoke(app, ["train-verifier", "--out", str(tmp_path / "v"), "--init-from", str(init)])
        assert r.exit_code == 2 and says in r.output, r.output


def test_tune_verifier_writes_a_copy_with_the_new_operating_point_and_the_same_weights(tmp_path):
    import shutil

    onnx = pytest.importorskip("onnx")
    from magspect.inspect.backend import Segmenter, bundled_model_path, sha256_file
    from magspect.inspect.verifier import Verifier, bundled_verifier_path
    from magspect.models.onnx_meta import record_checksum

    src = tmp_path / "w" / "default-verifier.onnx"
    src.parent.mkdir()
    shutil.copyfile(bundled_verifier_path(), src)
    (src.parent / "SHA256SUMS").write_text("0" * 64 + "  v2.onnx\n")
    before = Verifier(src).manifest
    band = round(before.keep_threshold + 0.02, 4)  # a new band above the bundled verifier's threshold
    assert band != before.review_below
    out = src.parent / "v2.onnx"
    r = runner.invoke(app, ["tune-verifier", str(src), "--review-below", str(band), "--out", str(out)])
    assert r.exit_code == 0, r.output
    after = Verifier(out).manifest
    assert after.review_below == band and after.keep_threshold == before.keep_threshold
    assert after.segmenter_sha256 == before.segmenter_sha256 and after.also_for_sha256 == before.also_for_sha256
    n_tuned = len(before.training.get("tuned", []))
    assert len(after.training["tuned"]) == n_tuned + 1  # the change is recorded
    assert after.training["tuned"][-1]["review_below"] == [before.review_below, band]
    assert json.loads((tmp_path / "w" / "v2.manifest.json").read_text())["review_below"] == band
    a, b = onnx.load(str(src)), onnx.load(str(out))
    assert [t.raw_data for t in a.graph.initializer] == [t.raw_data for t in b.graph.initializer]
    assert (src.parent / "SHA256SUMS").read_text().split()[0] == sha256_file(out)  # its checksum line updated
    assert not record_checksum(tmp_path / "nowhere.onnx")
    # a new keep threshold, no band, and one more model it serves (the bundled model with other metadata)
    other = tmp_path / "other.onnx"
    proto = onnx.load(str(bundled_model_path()))
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "note": "another file"})
    onnx.save(proto, str(other))
    other_sha = Segmenter(other, warmup=False).sha256
    assert not Verifier(out).manifest.fits(other_sha)
    v3 = tmp_path / "v3.onnx"
    r = runner.invoke(app, ["tune-verifier", str(out), "--keep-threshold", "0.03", "--review-below", "0",
                            "--also-for", str(other), "--out", str(v3)])
    assert r.exit_code == 0, r.output
    m3 = Verifier(v3).manifest
    assert m3.keep_threshold == 0.03 and m3.review_below is None and len(m3.training["tuned"]) == n_tuned + 2
    assert m3.fits(other_sha) and m3.training["tuned"][-1]["also_for_added"] == [other_sha]
    # refused: a band at or under the keep threshold, nothing to change, writing over the input
    r = runner.invoke(app, ["tune-verifier", str(src), "--review-below", str(before.keep_threshold / 2),
                            "--out", str(tmp_path / "v4.onnx")])
    assert r.exit_code == 2 and "above the verifier's keep threshold" in r.output
    assert not (tmp_path / "v4.onnx").exists()
    r = runner.invoke(app, ["tune-verifier", str(src), "--out", str(tmp_path / "v5.onnx")])
    assert r.exit_code == 2 and "nothing to change" in r.output
    r = runner.invoke(app, ["tune-verifier", str(src), "--review-below", "0.05", "--out", str(src)])
    assert r.exit_code == 2 and "new path" in r.output


def test_tune_verifier_spec_points(tmp_path):
    """--spec-point SPEC=KEEP[/REVIEW]: one spec's own operating point, added to the copy's manifest
    (the others keep the verifier's); a later call adds another; bad values are refused."""
    import shutil

    pytest.importorskip("onnx")
    from magspect.inspect.verifier import Verifier, bundled_verifier_path

    src = tmp_path / "v.onnx"
    shutil.copyfile(bundled_verifier_path(), src)
    before = Verifier(src).manifest
    disc, blk = "def-disc-d10-t3-nicuni", "def-blk-20x10x5-nicuni"
    r = runner.invoke(app, ["tune-verifier", str(src), "--spec-point", f"{disc}=0.3/0.5", "--out",
                            str(tmp_path / "v2.onnx")])
    assert r.exit_code == 0, r.output
    assert f"{disc}: keeps >= 0.3" in " ".join(r.output.split())
    v2 = Verifier(tmp_path / "v2.onnx")
    assert v2.manifest.keep_threshold == before.keep_threshold  # every other spec: unchanged
    assert (v2.operating_point(disc).keep_threshold, v2.operating_point(disc).review_below) == (0.3, 0.5)
    assert v2.operating_point(blk).keep_threshold == before.keep_threshold
    r = runner.invoke(app, ["tune-verifier", str(tmp_path / "v2.onnx"), "--spec-point", f"{blk}=0.2",
                            "--out", str(tmp_path / "v3.onnx")])
    assert r.exit_code == 0, r.output
    v3 = Verifier(tmp_path / "v3.onnx")
    assert set(v3.manifest.spec_points) == {disc, blk} and v3.operating_point(blk).review_below is None
    for bad, says in ((f"{disc}=0.3/0.2", "above its keep threshold"), ("nope=0.3", "unknown spec"),
                      (f"{disc}=x", "expected SPEC=KEEP"), (f"{disc}=1.5", "expected SPEC=KEEP")):
        r = runner.invoke(app, ["tune-verifier", str(src), "--spec-point", bad, "--out", str(tmp_path / "bad.onnx")])
        assert r.exit_code == 2 and says in " ".join(r.output.split()), (bad, r.output)
        assert not (tmp_path / "bad.onnx").exists()


def test_tune_verifier_dihedral_views_scores_each_candidate_as_the_mean_over_its_flips(tmp_path):
    pytest.importorskip("onnx")
    import numpy as np

    from magspect.inspect.verifier import Verifier, bundled_verifier_path, dihedral_views

    out = tmp_path / "v8.onnx"
    r = runner.invoke(app, ["tune-verifier", str(bundled_verifier_path()), "--dihedral-views", "8", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "each scored over 8 flips" in " ".join(r.output.split())
    plain, v8 = Verifier(bundled_verifier_path()), Verifier(out)
    assert plain.manifest.dihedral_views == 1 and v8.manifest.dihedral_views == 8
    assert v8.manifest.training["tuned"][-1]["dihedral_views"] == [1, 8]
    assert v8.manifest.keep_threshold == plain.manifest.keep_threshold  # the operating point is left as it was
    rng = np.random.default_rng(0)
    patches = rng.normal(0, 0.1, (5, 4, 64, 64)).astype(np.float32)
    patches[:, 1] = rng.random((5, 64, 64)) > 0.9
    features = np.tile(np.array([[1, 0, 0, 0.8]], np.float32), (5, 1))
    # by hand: each of the 8 transforms through the plain verifier, logits averaged
    logits = [np.log(s / (1 - s)) for s in (plain.scores(np.ascontiguousarray(v), features)
                                             for v in np.split(dihedral_views(patches, 8), 8))]
    want = 1 / (1 + np.exp(-np.mean(logits, axis=0)))
    np.testing.assert_allclose(v8.scores(patches, features), want, rtol=1e-4, atol=1e-6)
    assert not np.allclose(plain.scores(patches, features), want, atol=1e-4)  # the flips do change the scores
    r = runner.invoke(app, ["tune-verifier", str(bundled_verifier_path()), "--dihedral-views", "3",
                            "--out", str(tmp_path / "v3.onnx")])
    assert r.exit_code == 2 and "1, 2, 4 or 8" in r.output


def test_tune_verifier_lighting_names_the_light_its_operating_point_was_chosen_under(tmp_path):
    """One verifier's weights can ship twice, at a point chosen under the suite's lights and at one chosen
    under dark-field: results must say which copy judged a part, so the copy is named by its light."""
    pytest.importorskip("onnx")
    from magspect.inspect.verifier import Verifier, bundled_verifier_path

    dark = tmp_path / "dark.onnx"
    r = runner.invoke(app, ["tune-verifier", str(bundled_verifier_path()), "--keep-threshold", "0.3",
                            "--review-below", "0.5", "--lighting", "darkfield", "--out", str(dark)])
    assert r.exit_code == 0, r.output
    assert "chosen under darkfield light" in " ".join(r.output.split())
    plain, v = Verifier(bundled_verifier_path()), Verifier(dark)
    assert (plain.name, v.name) == ("verifier_cnn", "verifier_cnn-darkfield")
    assert v.manifest.lighting == "darkfield" and v.manifest.training["tuned"][-1]["lighting"] == [None, "darkfield"]
    back = tmp_path / "suite.onnx"  # re-tuned for the suite's draw of lights: the plain name again
    r = runner.invoke(app, ["tune-verifier", str(dark), "--lighting", "suite", "--out", str(back)])
    assert r.exit_code == 0, r.output
    assert Verifier(back).name == "verifier_cnn" and Verifier(back).manifest.keep_threshold == 0.3
    r = runner.invoke(app, ["tune-verifier", str(dark), "--lighting", "ring", "--out", str(tmp_path / "bad.onnx")])
    assert r.exit_code == 2 and "must be one of coaxial, dome, darkfield or suite" in " ".join(r.output.split())
    assert not (tmp_path / "bad.onnx").exists()
    with pytest.raises(ValueError, match="lighting"):  # nor does a manifest written by hand carry one
        type(v.manifest).model_validate({**v.manifest.model_dump(), "lighting": "ring"})
    from typing import get_args

    from magspect.datasets import FRONT_LIGHTINGS
    from magspect.inspect.verifier import VerifierLighting

    assert set(get_args(VerifierLighting)) == {*FRONT_LIGHTINGS, "suite"}  # every light the generator draws


def test_train_subtypes_mines_coating_flaws_trains_exports_and_evaluate_uses_it(tmp_path):
    from magspect.inspect.backend import Segmenter, bundled_model_path
    from magspect.inspect.subtype import SUBTYPE_LABELS, SubtypeClassifier

    out = tmp_path / "s"
    args = ["train-subtypes", "--out", str(out), "--parts", "30", "--val-parts", "10", "--epochs", "1",
            "--workers", "2", "--no-progress", "--also-for", str(bundled_model_path(int8=True))]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "reported coating flaws on a truth defect from 30 parts" in r.output and "plausible at" in r.output
    assert json.loads((out / "mined" / "mined.json").read_text())["force_defect"] == "coating_flaw"
    c = SubtypeClassifier(out / "subtypes.onnx")
    assert c.manifest.labels == SUBTYPE_LABELS and 0 < c.manifest.plausible_at <= 0.5
    assert c.manifest.fits(Segmenter(bundled_model_path(), warmup=False).sha256)
    assert c.manifest.fits(Segmenter(bundled_model_path(int8=True), warmup=False).sha256)
    assert c.manifest.training["counts"] and (out / "curves.png").is_file() and (out / "subtypes.pt").is_file()
    rep = json.loads((out / "report.json").read_text())
    assert rep["n_val"] > 0 and set(rep["per_label"]) == set(SUBTYPE_LABELS)

    # tuned: a stricter operating point and one more model it serves, weights unchanged
    import onnx

    other = tmp_path / "other.onnx"
    proto = onnx.load(str(bundled_model_path()))
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, "note": "another file"})
    onnx.save(proto, str(other))
    other_sha = Segmenter(other, warmup=False).sha256
    assert not c.manifest.fits(other_sha)
    tuned = tmp_path / "tuned.onnx"
    r = runner.invoke(app, ["tune-subtypes", str(out / "subtypes.onnx"), "--plausible-at", "0.001",
                            "--also-for", str(other), "--out", str(tuned)])
    assert r.exit_code == 0, r.output
    t = SubtypeClassifier(tuned).manifest
    assert t.plausible_at == 0.001 and t.fits(other_sha) and t.training["tuned"][-1]["also_for_added"] == [other_sha]
    assert t.training["tuned"][-1]["plausible_at"] == [c.manifest.plausible_at, 0.001]
    a, b = onnx.load(str(out / "subtypes.onnx")), onnx.load(str(tuned))
    assert [x.raw_data for x in a.graph.initializer] == [x.raw_data for x in b.graph.initializer]
    r = runner.invoke(app, ["tune-subtypes", str(tuned), "--out", str(tmp_path / "t2.onnx")])
    assert r.exit_code == 2 and "nothing to change" in r.output
    # a verifier run into the same folder would mix its candidates with these: refused
    r = runner.invoke(app, ["train-verifier", "--out", str(out), "--parts", "30", "--val-parts", "10"])
    assert r.exit_code == 2 and "force_defect='coating_flaw'" in r.output
    # candidates of another suite's parts (magsynth-v3: face cracks on the face) are not mixed in either
    meta = json.loads((out / "mined" / "mined.json").read_text())
    assert meta["suite"] == "magsynth-v2"  # the default: what the bundled files were mined on
    from magspect.cli.verifier import MINE_SUITE_DEFAULT
    from magspect.training.verifier_data import MINE_SUITE

    assert MINE_SUITE_DEFAULT == MINE_SUITE  # the command's default is the library's
    assert "--suite magsynth-v2" in SubtypeClassifier(out / "subtypes.onnx").manifest.training["command"]
    r = runner.invoke(app, ["train-subtypes", "--out", str(out), "--suite", "magsynth-v3", "--parts", "30",
                            "--val-parts", "10"])
    assert r.exit_code == 2 and "holds candidates of magsynth-v2 parts, not magsynth-v3's" in " ".join(r.output.split())
    r = runner.invoke(app, ["train-subtypes", "--out", str(out), "--suite", "magsynth-v9"])
    assert r.exit_code == 2 and "--suite 'magsynth-v9': unknown" in r.output

    ev = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--n", "2", "--subtypes", str(out / "subtypes.onnx"),
                             "--json", str(tmp_path / "ev.json")])
    assert ev.exit_code == 0, ev.output
    assert json.loads((tmp_path / "ev.json").read_text())["subtypes"]["name"] == "subtypes_cnn"
    ev = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--n", "1", "--subtypes", "none",
                             "--json", str(tmp_path / "ev0.json")])
    assert ev.exit_code == 0, ev.output
    assert json.loads((tmp_path / "ev0.json").read_text())["subtypes"] is None


def test_train_subtypes_refuses_bad_arguments(tmp_path):
    r = runner.invoke(app, ["train-subtypes", "--out", str(tmp_path / "s"), "--parts", "20", "--val-parts", "30"])
    assert r.exit_code == 2 and "must be more than" in r.output
    r = runner.invoke(app, ["train-subtypes", "--out", str(tmp_path / "s"), "--model", str(tmp_path / "no.onnx")])
    assert r.exit_code == 2 and "does not exist" in r.output
    r = runner.invoke(app, ["evaluate", "--suite", "magsynth-v2", "--n", "1", "--subtypes", str(tmp_path / "no.onnx")])
    assert r.exit_code == 2 and "does not exist" in r.output
