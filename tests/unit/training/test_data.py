"""Crop stream, sources and augmentation: seeded, aligned, biased towards defects."""

from __future__ import annotations

import itertools
import json

import cv2
import numpy as np
import pytest
import torch

from magspect.training.data import (
    CocoSource,
    CropStream,
    FolderSource,
    build_augment,
    defect_instances,
    hard_negative_groups,
    outline_corners,
    pick_crop_origin,
    to_unit_float,
    write_pair,
)
from magspect.training.toy import toy_views, write_toy_folder


class _ListSource:
    def __init__(self, views):
        self.views = views

    def sample(self, rng):
        return self.views[int(rng.integers(len(self.views)))]


def test_to_unit_float_uses_dtype_not_data():
    assert to_unit_float(np.full((2, 2), 255, np.uint8), 1).max() == 1.0
    assert to_unit_float(np.full((2, 2), 255, np.uint16), 1).max() == pytest.approx(255 / 65535)
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert to_unit_float(rgb, 1).shape == (4, 4, 1)
    assert to_unit_float(np.zeros((4, 4), np.uint8), 3).shape == (4, 4, 3)
    with pytest.raises(TypeError):
        to_unit_float(np.zeros((2, 2), np.float32), 1)


def _take(stream, n):
    return list(itertools.islice(iter(stream), n))


def test_stream_is_seeded_and_differs_per_rank():
    src = _ListSource(toy_views(4, 96, seed=1))
    a = _take(CropStream(src, crop_px=64, in_chans=1, seed=3), 6)
    b = _take(CropStream(src, crop_px=64, in_chans=1, seed=3), 6)
    c = _take(CropStream(src, crop_px=64, in_chans=1, seed=3, rank=1), 6)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c, strict=True))
    x, m = a[0]
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32 and m.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_defect_bias_puts_defects_in_crops():
    view = toy_views(1, 256, seed=2)[0]
    rng = np.random.default_rng(0)
    hits = []
    for _ in range(50):
        y0, x0 = pick_crop_origin(view[1], 64, 1.0, rng)
        hits.append((view[1][y0 : y0 + 64, x0 : x0 + 64] >= 2).any())
    assert np.mean(hits) > 0.9
    rng = np.random.default_rng(0)
    # without bias, far fewer crops see a defect (the defects cover a small part of the view)
    origins = [pick_crop_origin(view[1], 32, 0.0, rng) for _ in range(50)]
    none = [(view[1][y : y + 32, x : x + 32] >= 2).any() for y, x in origins]
    assert np.mean(none) < np.mean(hits)


def test_outline_corners_are_the_part_corners():
    mask = np.zeros((200, 300), np.uint8)
    mask[40:161, 60:241] = 1
    mask[100:104, 100:200] = 2  # a crack inside is no corner
    pts = outline_corners(mask)
    assert len(pts) == 4
    for corner in [(40, 60), (40, 240), (160, 60), (160, 240)]:
        assert np.abs(pts - np.array(corner)).sum(axis=1).min() <= 4


def test_hard_bias_centres_crops_on_lookalikes_and_corners():
    mask = np.zeros((512, 512), np.uint8)
    mask[100:400, 150:350] = 1
    mask[200:203, 200:300] = 2  # a crack
    # one lint fibre and many dust specks: kinds are drawn first, so the fibre is not drowned
    lint = {"kind": "lint", "bbox_xyxy_px": [20, 460, 30, 470]}
    dust = [{"kind": "dust", "bbox_xyxy_px": [400 + i, 20, 402 + i, 22]} for i in range(0, 100, 5)]
    groups = hard_negative_groups(mask, [lint, *dust])
    assert {k: g.shape[0] for k, g in groups.items()} == {"lint": 1, "dust": 20, "outline": 4}  # 4 corners
    assert groups["lint"].tolist() == [[465, 25]]
    rng = np.random.default_rng(0)
    near_lint = 0
    centres = np.concatenate(list(groups.values()))
    for _ in range(300):
        y0, x0 = pick_crop_origin(mask, 64, 0.0, rng, hard_bias=1.0, hard_centres=groups)
        inside = (centres[:, 0] >= y0) & (centres[:, 0] < y0 + 64) & (centres[:, 1] >= x0) & (centres[:, 1] < x0 + 64)
        assert inside.any()  # every crop holds a hard-negative centre
        near_lint += y0 <= 465 < y0 + 64 and x0 <= 25 < x0 + 64
    assert 0.2 < near_lint / 300 < 0.5  # about a third, not 1 in 25
    rng = np.random.default_rng(0)
    plain = [pick_crop_origin(mask, 64, 0.0, rng) for _ in range(200)]
    hits = [
        ((centres[:, 0] >= y) & (centres[:, 0] < y + 64) & (centres[:, 1] >= x) & (centres[:, 1] < x + 64)).any()
        for y, x in plain
    ]
    assert np.mean(hits) < 0.5
    with pytest.raises(ValueError, match="defect_bias \\+ hard_bias"):
        CropStream(_ListSource([]), crop_px=64, in_chans=1, defect_bias=0.8, hard_bias=0.3)


def test_folder_source_hands_out_stored_lookalikes(tmp_path):
    image, mask = toy_views(1, 96, seed=3)[0]
    write_pair(tmp_path, "a", image, mask, [{"kind": "dust", "bbox_xyxy_px": [1, 2, 5, 6]}])
    write_pair(tmp_path, "b", image, mask)
    src = FolderSource(tmp_path)
    got = {len(src.sample(np.random.default_rng(s))[2]) for s in range(20)}
    assert got == {0, 1}
    stream = CropStream(src, crop_px=64, in_chans=1, hard_bias=0.5, defect_bias=0.3, seed=1)
    x, m = _take(stream, 3)[0]
    assert x.shape == (1, 64, 64)


def test_augmentation_keeps_mask_aligned():
    # image intensity encodes the class, so after geometric augmentation each class must keep its level
    mask = np.zeros((64, 64), np.uint8)
    mask[8:56, 8:56] = 1
    mask[20:24, 10:50] = 2
    mask[30:45, 30:45] = 4
    mask[:5, 40:60] = 3
    image = (mask.astype(np.float32) * 0.2 + 0.05)[..., None]
    aug = build_augment(True)
    aug.set_random_seed(1)
    for _ in range(20):
        out = aug(image=image.copy(), mask=mask.copy())
        im, mk = out["image"][..., 0], out["mask"]
        assert sorted(np.unique(mk).tolist()) == [0, 1, 2, 3, 4]
        medians = [np.median(im[cv2.erode((mk == c).astype(np.uint8), np.ones((3, 3))) > 0]) for c in (0, 1, 3, 4)]
        assert medians == sorted(medians), medians


def test_folder_source_round_trip(tmp_path):
    write_toy_folder(tmp_path, 3, 64, seed=4)
    src = FolderSource(tmp_path)
    assert len(src) == 3
    image, mask = src.load(0)
    ref_img, ref_mask = toy_views(3, 64, seed=4)[0]
    assert np.array_equal(image, ref_img) and np.array_equal(mask, ref_mask)
    (tmp_path / "e" / "images").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no image/mask pairs"):
        FolderSource(tmp_path / "e")


def _rle_encode(binary: np.ndarray) -> dict:
    flat = binary.T.ravel()  # column-major
    counts, val, run = [], 0, 0
    for v in flat:
        if v == val:
            run += 1
        else:
            counts.append(run)
            val, run = v, 1
    counts.append(run)
    return {"size": list(binary.shape), "counts": [int(c) for c in counts]}


def test_coco_source_paints_polygons_and_rle(tmp_path):
    img = np.zeros((40, 50), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    crack = np.zeros((40, 50), np.uint8)
    crack[10:12, 5:30] = 1
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 50}],
        "categories": [{"id": 1, "name": "good_surface"}, {"id": 2, "name": "crack"}, {"id": 7, "name": "chip"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "segmentation": _rle_encode(crack)},
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [[2, 2, 45, 2, 45, 35, 2, 35]]},
            {"id": 3, "image_id": 1, "category_id": 7, "segmentation": [[30, 20, 40, 20, 40, 30, 30, 30]]},
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    image, mask = CocoSource(tmp_path / "annotations.json").load(0)
    assert image.shape == (40, 50)
    assert (mask[10:12, 5:30] == 2).all()  # crack painted over good surface
    assert mask[25, 35] == 3 and mask[5, 40] == 1 and mask[38, 48] == 0
    coco["categories"][0]["name"] = "scratchy"
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="not magspect classes"):
        CocoSource(tmp_path / "annotations.json")


def test_pool_mixes_parts_within_a_batch():
    class Distinct:
        def __init__(self):
            self.i = 0

        def sample(self, rng):
            self.i += 1
            img = np.full((64, 64), (self.i * 7) % 256, np.uint8)
            return img, np.ones((64, 64), np.uint8)

    def ids(stream):
        return {round(float(x.mean()) * 255) for x, _ in _take(stream, 8)}

    assert len(ids(CropStream(Distinct(), crop_px=32, in_chans=1, augment=False, pool_size=1, crops_per_part=8))) == 1
    assert len(ids(CropStream(Distinct(), crop_px=32, in_chans=1, augment=False, pool_size=16, crops_per_part=2))) >= 4


def test_defect_instances_by_class():
    mask = np.ones((64, 64), np.uint8)
    mask[5:7, 5:30] = 2  # one crack
    mask[40:44, 40:44] = 4  # two coating flaws
    mask[50:52, 10:12] = 4
    inst = defect_instances(mask)
    assert sorted(inst) == [2, 4]
    assert len(inst[2]) == 1 and len(inst[2][0]) == 50
    assert sorted(len(a) for a in inst[4]) == [4, 16]
    for a in inst[4]:
        assert (mask[a[:, 0], a[:, 1]] == 4).all()


def test_class_and_kind_weights_steer_the_crops():
    mask = np.ones((512, 512), np.uint8)
    mask[20:22, 20:60] = 2  # one crack, top left
    for i in range(6):  # six coating flaws, bottom right
        mask[400 + 10 * i : 403 + 10 * i, 450:453] = 4
    inst = defect_instances(mask)

    def share_top_left(**kw: object) -> float:
        rng = np.random.default_rng(1)
        got = [pick_crop_origin(mask, 64, 1.0, rng, instances=inst, **kw) for _ in range(300)]
        return float(np.mean([y0 < 100 and x0 < 100 for y0, x0 in got]))

    assert share_top_left() < 0.3  # 1 instance in 7
    assert 0.4 < share_top_left(class_weights={2: 1.0, 4: 1.0}) < 0.6  # class first: half
    assert share_top_left(class_weights={2: 9.0, 4: 1.0}) > 0.8
    groups = {"lint": np.array([[30, 30]]), "dust": np.array([[450, 450]])}
    rng = np.random.default_rng(2)
    got = [pick_crop_origin(mask, 64, 0.0, rng, 1.0, groups, kind_weights={"lint": 4.0}) for _ in range(300)]
    lint = np.mean([y0 <= 30 < y0 + 64 and x0 <= 30 < x0 + 64 for y0, x0 in got])
    assert 0.7 < lint < 0.9  # 4 : 1
    with pytest.raises(ValueError, match="not defect classes"):
        CropStream(_ListSource([]), crop_px=64, in_chans=1, class_weights={"lint": 1.0})


def test_config_rejects_bad_sampling_weights():
    from magspect.training.config import TrainConfig

    with pytest.raises(ValueError, match="hard_kind_weights"):
        TrainConfig.model_validate({"data": {"hard_kind_weights": {"lint": -1}}})
    with pytest.raises(ValueError):
        TrainConfig.model_validate({"data": {"defect_class_weights": {"dust": 1}}})
    cfg = TrainConfig.model_validate({"data": {"defect_class_weights": {"crack": 2}, "hard_kind_weights": {"lint": 3}}})
    assert cfg.data.defect_class_weights == {"crack": 2.0}
