"""COCO round trip: what write_dataset writes, read_coco reads back to the same masks."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from magspect.datasets import SynthConfig, masks_from_coco, read_coco, read_truth, write_dataset
from magspect.datasets.coco import mask_to_polygons, polygons_to_mask, rle_decode, rle_encode
from magspect.types import Defect


def test_rle_round_trip_and_convention() -> None:
    rng = np.random.default_rng(0)
    m = rng.random((13, 7)) > 0.6
    m[0, 0] = True
    rle = rle_encode(m)
    assert rle["counts"][0] == 0  # starts with a (empty) background run
    assert sum(rle["counts"]) == m.size
    assert np.array_equal(rle_decode(rle), m)
    # column-major, like pycocotools
    one = np.zeros((3, 2), bool)
    one[1, 0] = True
    assert rle_encode(one)["counts"] == [1, 1, 4]


def test_polygons_round_trip_thin_and_blobby_shapes() -> None:
    m = np.zeros((40, 40), np.uint8)
    cv2.circle(m, (12, 12), 6, 1, -1)
    cv2.line(m, (20, 5), (35, 30), 1, 1)  # a 1-px crack-like line
    m[2, 38] = 1  # a single pixel
    polys = mask_to_polygons(m)
    assert all(len(p) >= 6 for p in polys)
    assert np.array_equal(polygons_to_mask(polys, m.shape), m.astype(bool))


@pytest.mark.parametrize("fmt", ["polygon", "rle"])
def test_dataset_coco_round_trip(tmp_path: Path, fmt: str) -> None:
    parts = [("com-ring-od20-id10-t5", s) for s in range(3)] + [("def-blk-20x10x5-nicuni", 7)]
    cfg = SynthConfig(size_px=192, defect_rate=1.0, max_defects=3)
    counts = write_dataset(tmp_path / "ds", parts, cfg, coco_format=fmt)
    out = tmp_path / "ds"
    assert counts["images"] == 8 and counts["defects"] > 0
    doc = read_coco(out / "annotations.json")
    assert {c["name"] for c in doc["categories"]} == {"crack", "chip", "coating_flaw"}
    truth = read_truth(out)
    assert len(truth) == len(doc["images"]) == 8
    n_ann = 0
    for rec in truth:
        inst_png = cv2.imread(str(out / rec["instance_mask"]), cv2.IMREAD_UNCHANGED).astype(np.int32)
        cls_png = cv2.imread(str(out / rec["class_mask"]), cv2.IMREAD_UNCHANGED)
        assert cv2.imread(str(out / rec["image"]), cv2.IMREAD_UNCHANGED).shape == (192, 192)
        inst, klass = masks_from_coco(doc, rec["image_id"])
        assert np.array_equal(inst, inst_png)
        defect_cls = np.where(cls_png >= 2, cls_png, 0)
        assert np.array_equal(klass, defect_cls)
        for d in rec["defects"]:
            Defect(**{k: d[k] for k in Defect.model_fields})
        n_ann += len(doc["by_image"][rec["image_id"]])
        assert {"um_per_px", "dimensions_mm", "defects", "conforming"} <= set(rec)
    assert n_ann == counts["defects"]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["parts"][0] == ["com-ring-od20-id10-t5", 0]


def test_write_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        write_dataset(tmp_path, [("com-blk-20x10x5-zn", 1)], SynthConfig(size_px=128))
    assert (tmp_path / "x.txt").read_text() == "keep me"
