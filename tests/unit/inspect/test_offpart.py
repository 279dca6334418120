"""A crack ends where the part ends; a fibre lying over the edge runs on over the fixture."""

import cv2
import numpy as np
import pytest

from magspect.inspect.offpart import OFF_PART_RUN_PX, line_off_part, split_lines_off_part
from magspect.types import CLASS_IDS, Defect

EDGE_X = 120  # the part fills x < EDGE_X


def _scene(line_to_x: int | None, *, seed: int = 0, bg: float = 0.3, turn: bool = False):
    """A bright part (x < EDGE_X) on a darker fixture, seeded noise, and a dark 2 px line from x = 60
    rightwards to ``line_to_x`` (None: no line), gently sloped; ``turn``: off the part it turns
    steeply (down, 65 degrees off), as no fibre continuing the candidate would."""
    rng = np.random.default_rng(seed)
    img = np.full((200, 220), bg, np.float32)
    img[:, :EDGE_X] = 0.8
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    line = np.zeros(img.shape, np.uint8)
    if line_to_x is not None:
        if turn:
            cv2.line(line, (60, 100), (EDGE_X, 106), 1, 2)
            cv2.line(line, (EDGE_X, 106), (EDGE_X + 30, 190), 1, 2)
        else:
            cv2.line(line, (60, 100), (line_to_x, 100 + (line_to_x - 60) // 10), 1, 2)
    img -= 0.2 * cv2.GaussianBlur(line.astype(np.float32), (0, 0), 0.8)
    part = np.zeros(img.shape, np.uint8)
    part[:, :EDGE_X] = 1
    image = np.clip(img * 255, 0, 255).astype(np.uint8)
    # the candidate: the model's crack pixels, the line on the part only, stopping 2 px short of the edge
    cand = (line > 0) & (np.arange(img.shape[1])[None, :] < EDGE_X - 2) & (np.arange(img.shape[1])[None, :] >= 80)
    ys, xs = np.nonzero(cand)
    box = (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)) if xs.size else None
    return image, part, cand, box


def test_a_line_that_runs_on_past_the_outline_is_found_with_how_far():
    image, part, cand, box = _scene(line_to_x=200)
    line = line_off_part(image, part, cand, box)
    assert line is not None and line.polarity == "dark"
    # it runs 80 px on, but only the window around the candidate (64 px beyond its box) is looked at
    assert 50 <= line.run_px <= 66 and line.angle_deg < 20
    # the candidate may also be given cut to its box
    x0, y0, x1, y1 = map(int, box)
    assert line_off_part(image, part, cand[y0:y1, x0:x1], box) == line


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_crack_that_ends_at_the_outline_has_no_line_beyond(seed):
    image, part, cand, box = _scene(line_to_x=EDGE_X, seed=seed)
    line = line_off_part(image, part, cand, box)
    assert line is None or line.run_px < OFF_PART_RUN_PX  # at most the notch's blur


def test_a_line_off_the_part_going_another_way_is_not_the_candidate_running_on():
    image, part, cand, box = _scene(line_to_x=EDGE_X, turn=True)
    line = line_off_part(image, part, cand, box)
    assert line is None or line.run_px < OFF_PART_RUN_PX


def test_candidates_away_from_the_outline_or_along_it_are_not_looked_past():
    image, part, _, _ = _scene(line_to_x=200)
    inner = np.zeros(part.shape, bool)
    inner[99:102, 30:90] = True  # the same line, but only well inside the part
    assert line_off_part(image, part, inner, (30.0, 99.0, 90.0, 102.0)) is None
    along = np.zeros(part.shape, bool)
    along[40:160, EDGE_X - 4 : EDGE_X - 2] = True  # parallel to the edge, 2 px inside
    assert line_off_part(image, part, along, (EDGE_X - 4.0, 40.0, EDGE_X - 2.0, 160.0)) is None


def test_no_line_is_seen_on_a_black_background():
    """Dark-field light: the fixture is black, a fibre on it is not seen and nothing is dismissed."""
    image, part, cand, box = _scene(line_to_x=200, bg=0.0)
    line = line_off_part(image, part, cand, box)
    assert line is None or line.run_px < OFF_PART_RUN_PX


def _defect(cls: str, box) -> Defect:
    return Defect(class_name=cls, zone="edge", view="side", length_mm=1.0, width_mm=0.05, area_mm2=0.05,
                  bbox_xyxy_px=box)


def test_split_dismisses_only_crack_candidates_whose_line_runs_on():
    image, part, cand, box = _scene(line_to_x=200)
    class_mask = np.where(part > 0, CLASS_IDS["good_surface"], CLASS_IDS["background"]).astype(np.uint8)
    class_mask[cand] = CLASS_IDS["crack"]
    crack = _defect("crack", box)
    kept, dismissed = split_lines_off_part(image, part, class_mask, [crack], mm_per_px=0.02)
    assert kept == [] and len(dismissed) == 1
    why = dismissed[0].dismissed_because
    assert "past the part's outline" in why and "mm" in why and "fibre" in why
    # a coating flaw there is not a crack: not judged here
    class_mask[cand] = CLASS_IDS["coating_flaw"]
    flaw = _defect("coating_flaw", box)
    assert split_lines_off_part(image, part, class_mask, [flaw], mm_per_px=0.02) == ([flaw], [])
    # 0: the check is off
    class_mask[cand] = CLASS_IDS["crack"]
    assert split_lines_off_part(image, part, class_mask, [crack], mm_per_px=0.02, run_px=0) == ([crack], [])
    # a line that stops at the outline: kept
    image2, _, _, _ = _scene(line_to_x=EDGE_X)
    assert split_lines_off_part(image2, part, class_mask, [crack], mm_per_px=0.02) == ([crack], [])
