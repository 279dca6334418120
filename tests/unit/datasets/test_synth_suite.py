"""magsynth-v1: fixed seeds per split, reproducible specs, a test set about half nonconforming."""

from __future__ import annotations

import numpy as np
import pytest

from magspect.datasets import contact_sheet, get_suite, magsynth_v1
from magspect.specs import get_spec


def test_splits_are_disjoint_and_sized() -> None:
    tr, va, te = (set(magsynth_v1.seeds(s)) if s != "train" else magsynth_v1.seeds(s) for s in ("train", "val",
                                                                                                  "test"))
    assert len(te) == 1000 and len(va) == 2000
    assert not (va & te)
    assert all(s not in tr for s in list(va)[:10] + list(te)[:10])
    assert get_suite("magsynth-v1") is magsynth_v1
    with pytest.raises(KeyError):
        magsynth_v1.seeds("holdout")


def test_parts_are_reproducible_and_mix_every_spec() -> None:
    a = magsynth_v1.parts("test")
    assert a == magsynth_v1.parts("test")
    assert {sid for sid, _ in a} == set(magsynth_v1.spec_ids)
    for sid in magsynth_v1.spec_ids:
        get_spec(sid)
    assert magsynth_v1.parts("train", limit=5)[4][1] == 4


def test_iter_parts_streams_generated_parts() -> None:
    parts = list(magsynth_v1.iter_parts("val", limit=2, size_px=128, views=("top",)))
    assert [p.seed for p in parts] == [1_000_000, 1_000_001]
    assert parts[0].views["top"].image.shape == (128, 128)


@pytest.mark.slow
def test_test_split_is_about_half_nonconforming() -> None:
    parts = list(magsynth_v1.iter_parts("test", limit=150, size_px=512))
    share = np.mean([not p.truth["conforming"] for p in parts])
    assert 0.35 <= share <= 0.65


def test_contact_sheet_has_every_row() -> None:
    sheet = contact_sheet(tile_px=48, size_px=192)
    assert sheet.dtype == np.uint8 and sheet.ndim == 3
    assert sheet.shape[1] == 6 * 48
    assert sheet.shape[0] == 48 * (5 + 2)


def test_magsynth_v2_is_v1_imaged_by_a_station() -> None:
    """Same parts (specs, seeds, truth) as v1; every view front-lit, with a back-lit companion."""
    v2 = get_suite("magsynth-v2")
    assert v2.seed_ranges == magsynth_v1.seed_ranges and v2.parts("test", 20) == magsynth_v1.parts("test", 20)
    lightings = []
    for p1, p2 in zip(magsynth_v1.iter_parts("test", 6, size_px=128), v2.iter_parts("test", 6, size_px=128),
                      strict=True):
        assert p1.truth["dimensions_mm"] == p2.truth["dimensions_mm"]
        assert [(d["class_name"], d["length_mm"]) for d in p1.truth["defects"]] == [
            (d["class_name"], d["length_mm"]) for d in p2.truth["defects"]
        ]
        assert p1.truth["verdict"] == p2.truth["verdict"]
        for rv in p2.views.values():
            lightings.append(rv.truth["lighting"])
            assert rv.backlight is not None and rv.backlight.shape == rv.image.shape
    assert set(lightings) <= {"coaxial", "dome", "darkfield"}
