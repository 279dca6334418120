"""The model's operating point: a defect pixel counts only where its class probability reaches the
threshold (the manifest's, or the caller's)."""

import numpy as np
import pytest

from magspect.datasets import FRONT_LIGHTINGS, SynthConfig, generate_part
from magspect.inspect.backend import Segmentation
from magspect.inspect.geometry_defects import below_threshold_to_good
from magspect.inspect.inspector import Inspector
from magspect.models.manifest import Manifest, Preprocess

SPEC = "com-blk-20x10x5-zn"


def test_weak_defect_pixels_become_good_surface():
    cm = np.ones((20, 20), np.uint8)
    cm[5:8, 5:8] = 2
    cm[12:15, 12:15] = 4
    conf = np.full((20, 20), 0.9, np.float32)
    conf[5:8, 5:8] = 0.55
    out = below_threshold_to_good(cm, conf, 0.7)
    assert (out[5:8, 5:8] == 1).all() and (out[12:15, 12:15] == 4).all() and (cm[5:8, 5:8] == 2).all()
    assert below_threshold_to_good(cm, conf, 0.5) is cm


class _OneCrack:
    """Calls a 30-px crack on the part with probability 0.6, everything else good surface."""

    def __init__(self, threshold=0.0):
        self.manifest = Manifest(model_name="one-crack", in_channels=1, defect_threshold=threshold,
                                 preprocess=Preprocess(bit_depth=8, color="gray", mean=(0.5,), std=(0.25,)))
        self.name, self.sha256, self.provider = "one-crack", "0" * 64, "test"

    def predict(self, images, batch_size=8, rois=None):
        out = []
        for im in images:
            cm = np.ones(im.shape[:2], np.uint8)
            h, w = cm.shape
            cm[h // 2, w // 2 - 15 : w // 2 + 15] = 2
            out.append(Segmentation(cm, np.where(cm == 2, 0.6, 1.0).astype(np.float32)))
        return out


@pytest.mark.parametrize(("manifest_thr", "caller_thr", "cracks"), [(0.0, None, True), (0.7, None, False),
                                                                    (0.7, 0.5, True), (0.0, 0.65, False)])
def test_the_inspector_applies_the_operating_point(manifest_thr, caller_thr, cracks):
    p = generate_part(SPEC, 2, SynthConfig(size_px=384, backlight=True, lighting=FRONT_LIGHTINGS, defects=False,
                                            out_of_tolerance_rate=0.0))
    insp = Inspector(segmenter=_OneCrack(manifest_thr), defect_threshold=caller_thr)
    r = insp.inspect({v: rv.image for v, rv in p.views.items()}, spec=SPEC,
                     um_per_px={v: rv.truth["um_per_px"] for v, rv in p.views.items()},
                     backlights={v: rv.backlight for v, rv in p.views.items()})
    assert any(d.class_name == "crack" for d in r.defects) == cracks
    with pytest.raises(ValueError, match="defect_threshold"):
        Inspector(segmenter=_OneCrack(), defect_threshold=1.5)
