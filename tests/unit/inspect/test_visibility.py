"""A silhouette-only view is recognised, and the Inspector never passes a surface nobody could see."""

import numpy as np
import pytest

from magspect.datasets import SynthConfig, generate_part
from magspect.inspect.backend import Segmentation
from magspect.inspect.inspector import Inspector
from magspect.inspect.metrology._silhouette import find_part
from magspect.inspect.visibility import hidden_surface
from magspect.models.manifest import Manifest, Preprocess
from magspect.types import Verdict

SPEC = "def-blk-20x10x5-nicuni"


def _clean(lighting):
    cfg = SynthConfig(size_px=384, lighting=lighting, backlight=True, defects=False, out_of_tolerance_rate=0.0,
                      dimension_sigma_fraction=0.05)
    return generate_part(SPEC, 11, cfg)


@pytest.mark.parametrize(("lighting", "hidden"), [("backlight", True), ("coaxial", False), ("dome", False),
                                                   ("darkfield", False)])
def test_only_a_back_lit_view_hides_the_surface(lighting, hidden):
    rv = _clean(lighting).views["top"]
    mask = find_part(rv.backlight).mask
    reason = hidden_surface(rv.image, mask, view="top")
    assert (reason is not None) == hidden
    if hidden:
        assert "top view shows the part only as a silhouette" in reason and "front-lit" in reason
    # a 16-bit image is judged on its own full scale
    assert (hidden_surface(rv.image.astype(np.uint16) * 257, mask) is not None) == hidden


class _AllGood:
    manifest = Manifest(model_name="all-good", in_channels=1,
                        preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
    name, sha256, provider = "all-good", "0" * 64, "test"

    def predict(self, images, batch_size=8, rois=None):
        return [Segmentation(np.ones(im.shape[:2], np.uint8), np.ones(im.shape[:2], np.float32)) for im in images]


def test_a_clean_part_seen_only_in_silhouette_goes_to_review_not_pass():
    insp = Inspector(segmenter=_AllGood())
    results = {}
    for lighting in ("coaxial", "backlight"):
        p = _clean(lighting)
        results[lighting] = insp.inspect(
            {v: rv.image for v, rv in p.views.items()}, spec=SPEC,
            um_per_px={v: rv.truth["um_per_px"] for v, rv in p.views.items()},
            backlights={v: rv.backlight for v, rv in p.views.items()},
        )
    assert results["coaxial"].verdict == Verdict.PASS, [r.message for r in results["coaxial"].reasons]
    r = results["backlight"]
    assert r.verdict == Verdict.REVIEW
    assert {x.rule for x in r.reasons} == {"inspection.surface_not_visible"} and len(r.reasons) == 2  # both views
    assert r.measurements and all(m.value is not None for m in r.measurements.values())  # still measured
