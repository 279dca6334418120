"""Labels, truth records, nuisances and determinism of the synthetic generator."""

from __future__ import annotations

import numpy as np
import pytest

from magspect.datasets import SynthConfig, generate_part
from magspect.inspect.gate import judge_truth
from magspect.specs import get_spec, list_specs
from magspect.types import CLASS_IDS, DEFECT_SUBTYPES, Defect

SMALL = dict(size_px=256)


def test_same_seed_same_bytes_and_different_seed_differs() -> None:
    cfg = SynthConfig(defect_rate=1.0, **SMALL)
    a = generate_part("com-blk-20x10x5-zn", 42, cfg)
    b = generate_part("com-blk-20x10x5-zn", 42, cfg)
    c = generate_part("com-blk-20x10x5-zn", 43, cfg)
    for v in cfg.views:
        assert a.views[v].image.tobytes() == b.views[v].image.tobytes()
        assert a.views[v].class_mask.tobytes() == b.views[v].class_mask.tobytes()
        assert a.views[v].instance_mask.tobytes() == b.views[v].instance_mask.tobytes()
        assert a.views[v].truth == b.views[v].truth
    assert a.views["top"].image.tobytes() != c.views["top"].image.tobytes()


def test_global_numpy_rng_is_not_used() -> None:
    np.random.seed(1)  # noqa: NPY002 (the point of the test)
    a = generate_part("def-disc-d10-t3-nicuni", 5, SynthConfig(**SMALL))
    np.random.seed(2)  # noqa: NPY002 (the point of the test)
    b = generate_part("def-disc-d10-t3-nicuni", 5, SynthConfig(**SMALL))
    assert a.views["top"].image.tobytes() == b.views["top"].image.tobytes()


@pytest.mark.parametrize("spec", [s.id for s in list_specs()])
def test_truth_dimensions_use_the_family_names(spec: str) -> None:
    sp = get_spec(spec)
    part = generate_part(sp, 9, SynthConfig(**SMALL))
    assert tuple(part.truth["dimensions_mm"]) == sp.family.names
    for rv in part.views.values():
        assert rv.truth["dimensions_mm"] == part.truth["dimensions_mm"]
        assert rv.truth["um_per_px"] > 0
        for key in ("pose", "surface", "lighting", "bit_depth", "part_id", "spec_id", "seed", "conforming", "view"):
            assert key in rv.truth


def test_forced_dimensions_and_derived_arc_values() -> None:
    part = generate_part("ev-arc-r30-r25-40deg", 1, SynthConfig(dimensions_mm={"outer_radius": 30.02,
                                                                             "inner_radius": 25.01,
                                                                             "angle_deg": 40.1}, **SMALL))
    d = part.truth["dimensions_mm"]
    assert d["outer_radius"] == pytest.approx(30.02)
    assert d["inner_radius"] == pytest.approx(25.01)
    assert d["angle_deg"] == pytest.approx(40.1, abs=1e-6)
    assert d["thickness"] == pytest.approx(30.02 - 25.01)
    assert d["chord"] == pytest.approx(2 * 30.02 * np.sin(np.radians(40.1) / 2), abs=1e-6)


def test_truth_dims_match_drawn_geometry() -> None:
    """Thickness from the side view's coverage (column sums), diameter from the top view's area."""
    cfg = SynthConfig.clean(size_px=512, lighting="backlight")
    part = generate_part("def-disc-d10-t3-nicuni", 4, cfg)
    d = part.truth["dimensions_mm"]
    side, top = part.views["side"], part.views["top"]
    m = side.truth["um_per_px"] / 1000
    col = int(round(side.truth["pose"]["cx_px"]))
    assert side.coverage[:, col].sum() * m == pytest.approx(d["thickness"], abs=1e-4)
    mt = top.truth["um_per_px"] / 1000
    diameter = 2 * np.sqrt(top.coverage.sum(dtype=np.float64) * mt * mt / np.pi)
    assert diameter == pytest.approx(d["diameter"], abs=2e-4)


def test_out_of_tolerance_parts_are_nonconforming() -> None:
    spec = get_spec("def-blk-20x10x5-nicuni")
    cfg = SynthConfig(out_of_tolerance_rate=1.0, defects=False, views=("top",), **SMALL)
    for seed in range(5):
        part = generate_part(spec, seed, cfg)
        assert part.truth["conforming"] is False
        assert part.truth["verdict"] == judge_truth(spec, part.truth["dimensions_mm"], []).verdict
    ok = generate_part(spec, 0, SynthConfig(out_of_tolerance_rate=0.0, dimension_sigma_fraction=0.0, defects=False,
                                            **SMALL))
    assert ok.truth["conforming"] is True


FORCED = ["crack", "chip"] + [f"coating_flaw/{s}" for s in DEFECT_SUBTYPES["coating_flaw"]]


@pytest.mark.parametrize("force", FORCED)
def test_every_defect_class_is_labelled_with_its_id(force: str) -> None:
    klass, _, sub = force.partition("/")
    found = False
    for seed in range(4):
        part = generate_part("com-ring-od20-id10-t5", seed,
                             SynthConfig(force_defect=force, nuisances=False, size_px=384, max_defects=1))
        for rv in part.views.values():
            for d in rv.truth["defects"]:
                Defect(**{k: d[k] for k in Defect.model_fields})
                region = rv.instance_mask == d["instance_id"]
                assert region.any()
                assert set(np.unique(rv.class_mask[region])) == {CLASS_IDS[d["class_name"]]}
                x0, y0, x1, y1 = (int(v) for v in d["bbox_xyxy_px"])
                assert region[y0:y1, x0:x1].sum() == region.sum()
                if d["class_name"] == klass and (not sub or d["subtype"] == sub):
                    found = True
        # masks hold exactly the truth's instances
        ids = {d["instance_id"] for rv in part.views.values() for d in rv.truth["defects"]}
        got = {int(i) for rv in part.views.values() for i in np.unique(rv.instance_mask) if i}
        assert ids == got
        if found:
            break
    assert found, f"no {force} rendered in 4 seeds"


def test_chip_changes_the_silhouette_and_is_matte() -> None:
    cfg = SynthConfig(force_defect="chip", nuisances=False, noise=False, blur=False, views=("top",),
                      lighting="backlight", size_px=512, max_defects=1)
    for seed in range(6):
        part = generate_part("com-blk-20x10x5-zn", seed, cfg)
        rv = part.views["top"]
        chips = [d for d in rv.truth["defects"] if d["class_name"] == "chip"]
        if chips:
            region = rv.instance_mask == chips[0]["instance_id"]
            # some chip pixels are now background-bright in the backlight (material is missing)
            assert (rv.image[region] > 0.5 * rv.image.max()).any()
            return
    pytest.fail("no chip rendered")


def test_nuisances_never_enter_the_masks() -> None:
    base = dict(defects=False, size_px=256, lighting="darkfield")
    for seed in range(3):
        with_n = generate_part("def-blk-20x10x5-nicuni", seed, SynthConfig(nuisances=True, **base))
        without = generate_part("def-blk-20x10x5-nicuni", seed, SynthConfig(nuisances=False, **base))
        for v in with_n.views:
            a, b = with_n.views[v], without.views[v]
            assert np.array_equal(a.class_mask, b.class_mask)
            assert set(np.unique(a.class_mask)) <= {0, 1}
            assert not a.instance_mask.any()
            assert a.truth["defects"] == []
        assert any(not np.array_equal(with_n.views[v].image, without.views[v].image) for v in with_n.views)


def test_nuisances_are_recorded_where_they_change_the_image_and_recording_changes_nothing(monkeypatch) -> None:
    from magspect.datasets import _generate

    base = dict(defects=False, size_px=256, lighting="darkfield")
    part = generate_part("def-blk-20x10x5-nicuni", 5, SynthConfig(nuisances=True, **base))
    without = generate_part("def-blk-20x10x5-nicuni", 5, SynthConfig(nuisances=False, **base))
    kinds = set()
    for name, v in part.views.items():
        recs = v.truth["nuisances"]
        assert recs, "every view gets at least 3 dust specks"
        for r in recs:
            x0, y0, x1, y1 = r["bbox_xyxy_px"]
            assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
            kinds.add(r["kind"])
        # a dust speck changes the image inside its box (darkfield: it scatters light)
        dust = [r["bbox_xyxy_px"] for r in recs if r["kind"] == "dust"]
        diff = np.abs(v.image.astype(int) - without.views[name].image.astype(int))
        assert any(diff[y0:y1, x0:x1].max() > 0 for x0, y0, x1, y1 in dust)
    assert kinds <= {"dust", "lint", "water_spot", "fingerprint", "glint"}
    assert without.views["top"].truth["nuisances"] == []

    # recording draws nothing from the rng: the images are the bytes they were without it
    original = _generate._nuisances.apply
    monkeypatch.setattr(_generate._nuisances, "apply", lambda *a, **k: original(*a[:5]))
    unrecorded = generate_part("def-blk-20x10x5-nicuni", 5, SynthConfig(nuisances=True, **base))
    for name, v in part.views.items():
        assert np.array_equal(v.image, unrecorded.views[name].image)
        assert unrecorded.views[name].truth["nuisances"] == []


@pytest.mark.parametrize("bit_depth,color,dtype,ndim", [(8, False, np.uint8, 2), (16, False, np.uint16, 2),
                                                        (8, True, np.uint8, 3)])
def test_output_formats(bit_depth: int, color: bool, dtype: type, ndim: int) -> None:
    part = generate_part("com-blk-20x10x5-zn", 2, SynthConfig(bit_depth=bit_depth, color=color, views=("top",),
                                                              **SMALL))
    img = part.views["top"].image
    assert img.dtype == dtype and img.ndim == ndim and img.shape[:2] == (256, 256)
    assert part.views["top"].class_mask.dtype == np.uint8
    assert part.views["top"].instance_mask.dtype == np.int32


def test_bad_config_is_refused() -> None:
    for kw in ({"lighting": "sun"}, {"surface": "gold"}, {"bit_depth": 12}, {"views": ("front",)},
               {"force_defect": "dent"}, {"color": True, "bit_depth": 16}):
        with pytest.raises(ValueError):
            SynthConfig(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("force", ["chip/edge_chip", "chip/corner_chip", "coating_flaw/stain", "coating_flaw/peel"])
def test_labelled_area_matches_truth_area(force: str) -> None:
    """The mask is drawn from the same geometry the truth measures: pixel area = area_mm2 within 10 %."""
    n = 0
    for seed in range(4):
        part = generate_part("com-blk-20x10x5-zn", seed, SynthConfig(force_defect=force, max_defects=1,
                                                                     nuisances=False, views=("top",), size_px=768))
        rv = part.views["top"]
        m = rv.truth["um_per_px"] / 1000
        for d in rv.truth["defects"]:
            px = int((rv.instance_mask == d["instance_id"]).sum())
            if px >= 80:
                assert px * m * m == pytest.approx(d["area_mm2"], rel=0.1), d
                n += 1
    assert n >= 2


def test_lighting_can_be_drawn_from_a_set_of_choices():
    from magspect.datasets import FRONT_LIGHTINGS

    seen = {generate_part("def-blk-20x10x5-nicuni", s, SynthConfig(size_px=128, lighting=FRONT_LIGHTINGS,
                                                                   defects=False)).views["top"].truth["lighting"]
            for s in range(40)}
    assert seen <= set(FRONT_LIGHTINGS) and len(seen) >= 2
    with pytest.raises(ValueError, match="lighting choices"):
        SynthConfig(lighting=("coaxial", "sunlight"))
