"""The second-light companion image: the same surface lit another way, and the first image unchanged."""

import numpy as np
import pytest

from magspect.datasets import SynthConfig, generate_part


def _crack_part(cfg: SynthConfig, seed: int = 3):
    for s in range(seed, seed + 20):  # the first seed whose crack is painted on the top view
        p = generate_part("def-blk-20x10x5-nicuni", s, cfg)
        if (p.views["top"].class_mask == 2).sum() >= 20:
            return p
    raise AssertionError("no crack on the top view in 20 seeds")


def test_second_light_leaves_the_first_image_alone_and_is_reproducible():
    cfg = SynthConfig(size_px=256, lighting="darkfield", backlight=True)
    a = generate_part("def-blk-20x10x5-nicuni", 11, cfg)
    b = generate_part("def-blk-20x10x5-nicuni", 11, cfg.with_(second_lighting="dome"))
    for v in ("top", "side"):
        assert a.views[v].second is None and "second_lighting" not in a.views[v].truth
        np.testing.assert_array_equal(a.views[v].image, b.views[v].image)
        np.testing.assert_array_equal(a.views[v].backlight, b.views[v].backlight)
        np.testing.assert_array_equal(a.views[v].class_mask, b.views[v].class_mask)
        sec = b.views[v].second
        assert sec.shape == a.views[v].image.shape and sec.dtype == a.views[v].image.dtype
        assert b.views[v].truth["second_lighting"] == "dome"
        inside = b.views[v].coverage > 0.99
        # dark-field: the flat face is dark; dome: it is well exposed
        assert a.views[v].image[inside].mean() < 40 < sec[inside].mean()
    again = generate_part("def-blk-20x10x5-nicuni", 11, cfg.with_(second_lighting="dome"))
    np.testing.assert_array_equal(again.views["top"].second, b.views["top"].second)


@pytest.mark.parametrize("second", ["dome", "coaxial"])
def test_a_crack_glows_under_dark_field_and_darkens_under_the_second_light(second):
    p = _crack_part(SynthConfig(size_px=512, lighting="darkfield", second_lighting=second, nuisances=False))
    rv = p.views["top"]
    crack = rv.class_mask == 2
    face = (rv.class_mask == 1) & (rv.coverage > 0.99)
    first, sec = rv.image.astype(float), rv.second.astype(float)
    assert first[crack].mean() > first[face].mean() + 5
    assert sec[crack].mean() < sec[face].mean() - 5


def test_second_light_must_be_a_front_light():
    with pytest.raises(ValueError, match="second_lighting must be one of coaxial, dome, darkfield"):
        SynthConfig(second_lighting="backlight")


@pytest.mark.parametrize("second", ["dome", "coaxial"])
def test_the_fixture_under_the_second_light_looks_as_under_that_light_alone(second):
    # a bright plated part: the suite puts the fixture at 4-20 % of full scale under coaxial or dome
    # light; drawn from dark-field's level it came out several times brighter (up to saturation)
    levels = []
    for seed in range(6):
        p = generate_part("def-blk-20x10x5-nicuni", seed, SynthConfig(size_px=256, lighting="darkfield",
                                                                      second_lighting=second, vignetting=False))
        for rv in p.views.values():
            levels.append(np.median(rv.second[rv.coverage < 0.01]) / 255)
    assert 0.02 < min(levels) and max(levels) < 0.3, levels
