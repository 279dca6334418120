import numpy as np

from magspect.inspect.geometry_defects import merge_chips, on_part_only, silhouette_chips


def _rect(h=100, w=160):
    m = np.zeros((h, w), np.uint8)
    m[20:80, 20:140] = 1
    return m


def test_a_notch_in_the_silhouette_is_a_chip_and_ragged_noise_is_not():
    ideal = _rect()
    part = ideal.copy()
    part[20:26, 60:75] = 0  # a chip 6 px deep
    part[79, 100] = 0  # one-pixel noise on the edge
    part[20:21, 120:124] = 0  # a 1-px-deep scrape
    chips = silhouette_chips(ideal, part)
    assert chips[22, 65] and chips.sum() >= 6 * 15 * 0.8
    assert not chips[79, 100] and not chips[20, 121]
    assert not silhouette_chips(ideal, ideal).any()


def test_defects_off_the_part_are_dropped_and_chips_merged():
    ideal = _rect()
    cm = np.where(ideal > 0, 1, 0).astype(np.uint8)
    cm[5:10, 5:10] = 3  # a "chip" in the background, far from the part
    cm[18:22, 50:60] = 3  # a chip call straddling the outline: kept (within the margin)
    cm[40:45, 40:45] = 4  # a coating flaw on the part: kept
    out = on_part_only(cm, ideal)
    assert (out[5:10, 5:10] == 0).all()
    assert (out[18:22, 50:60] == 3).all() and (out[40:45, 40:45] == 4).all()
    chips = np.zeros_like(ideal, bool)
    chips[30:33, 30:33] = True
    assert (merge_chips(out, chips)[30:33, 30:33] == 3).all()
    assert merge_chips(out, np.zeros_like(chips)) is out


def test_a_roi_gives_the_same_chips_and_calls_as_the_whole_image():
    ideal = _rect()
    part = ideal.copy()
    part[20:26, 60:75] = 0
    roi = (12, 12, 148, 88)  # the outline with 8 px to spare
    np.testing.assert_array_equal(silhouette_chips(ideal, part, roi=roi), silhouette_chips(ideal, part))
    cm = np.where(ideal > 0, 1, 0).astype(np.uint8)
    cm[2:6, 2:6] = 2  # beyond the box
    cm[14:17, 40:44] = 4  # inside the box but off the part
    cm[18:22, 50:60] = 3  # on the outline: kept
    np.testing.assert_array_equal(on_part_only(cm, ideal, roi=roi), on_part_only(cm, ideal))
    assert (on_part_only(cm, ideal, roi=roi)[2:6, 2:6] == 0).all()


def test_clear_boxes_removes_dismissed_defects_but_not_kept_ones():
    from magspect.inspect.geometry_defects import clear_boxes

    m = np.ones((40, 40), np.uint8)
    m[5:8, 5:20] = 2  # a dismissed look-alike
    m[20:30, 20:30] = 4  # a kept coating flaw whose box overlaps the dismissed box below
    out = clear_boxes(m, [(5, 5, 20, 8), (18, 18, 32, 32)], keep=[(20, 20, 30, 30)])
    assert (out[5:8, 5:20] == 1).all()
    assert (out[20:30, 20:30] == 4).all()
    assert (m[5:8, 5:20] == 2).all(), "the input is not modified"
    assert out[0, 0] == 1 and out.dtype == np.uint8


def test_a_chip_is_measured_out_to_its_tapering_ends_and_the_edge_noise_beside_it_stays_out():
    ideal = _rect()
    part = ideal.copy()
    # a shell chip on the top edge (rows 20..): 4 px deep in its middle, tapering to 1 px over 40 px
    for x in range(50, 90):
        t = abs(x - 70) / 20
        part[20:20 + max(1, round(4 * (1 - t ** 2))), x] = 0
    part[20, 100:130:2] = 0  # flicker on the same edge beyond it, one pixel deep, not touching it
    part[20, 91] = 0  # and one such pixel next to its end
    chips = silhouette_chips(ideal, part)
    cols = np.nonzero(chips.any(axis=0))[0]
    # the 3x3 opening alone keeps only the stretch at least 3 px deep (x 58..82); grown back over the
    # pixels deeper than the outermost ring it reaches the 2-px-deep ends (x 55..85); the 1-px tips
    # lie in that ring, where a straight edge flickers, and stay out
    assert (cols.min(), cols.max()) == (55, 85)
    assert not chips[20, 100:130].any() and not chips[20, 91]
    assert not chips[20:22, 40:50].any() and chips[20:24, 70].all()
