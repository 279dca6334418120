"""The back-lit companion image: same part and pose, unsaturated, and it leaves the front-lit bytes alone."""

import numpy as np

from magspect.datasets import SynthConfig, generate_part
from magspect.inspect.metrology import measure_view
from magspect.specs import get_spec


def test_backlight_is_a_companion_that_changes_nothing_else():
    cfg = SynthConfig(size_px=256)
    a = generate_part("def-blk-20x10x5-nicuni", 11, cfg)
    b = generate_part("def-blk-20x10x5-nicuni", 11, cfg.with_(backlight=True))
    for v in ("top", "side"):
        assert a.views[v].backlight is None
        np.testing.assert_array_equal(a.views[v].image, b.views[v].image)
        np.testing.assert_array_equal(a.views[v].class_mask, b.views[v].class_mask)
        bl = b.views[v].backlight
        assert bl.shape == a.views[v].image.shape[:2] and bl.dtype == np.uint8
        assert bl.max() < 250, "a back-light for metrology must not saturate"
        inside = b.views[v].coverage > 0.99
        outside = b.views[v].coverage < 0.01
        assert bl[inside].mean() < 30 and bl[outside].mean() > 150
    again = generate_part("def-blk-20x10x5-nicuni", 11, cfg.with_(backlight=True))
    np.testing.assert_array_equal(again.views["top"].backlight, b.views["top"].backlight)


def test_metrology_on_the_backlight_matches_truth():
    spec = get_spec("def-blk-20x10x5-nicuni")
    cfg = SynthConfig(backlight=True, defects=False, out_of_tolerance_rate=0.0)
    p = generate_part(spec, 12, cfg)
    for v in ("top", "side"):
        rv = p.views[v]
        res = measure_view(rv.backlight, spec, v, rv.truth["um_per_px"])
        px = rv.truth["um_per_px"] / 1000
        for name, value in res.values.items():
            if not name.endswith("_deg"):
                assert abs(value - p.truth["dimensions_mm"][name]) < 0.25 * px, name
