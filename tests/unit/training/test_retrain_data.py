"""Real labelled data for retraining: class maps, mask folders, COCO exports, the content-hash split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from magspect.datasets.coco import mask_to_polygons, rle_encode
from magspect.datasets.labelled import ClassMap, LabelledDataError
from magspect.training.realdata import (
    data_report,
    is_validation,
    open_labelled,
    read_coco_labelled,
    split_by_content,
    write_toy_tiles,
)
from magspect.types import CLASS_IDS

REPO = Path(__file__).resolve().parents[3]
MT_MAP = REPO / "configs" / "class-map-magnetic-tile.yaml"
MT_DATA = REPO.parent / "shared" / "data" / "magnetic_tile"


def test_magnetic_tile_class_map_file():
    cm = ClassMap.from_file(MT_MAP)
    assert cm.mapping == {"MT_Crack": "crack", "MT_Break": "chip", "MT_Fray": "chip", "MT_Blowhole": "coating_flaw",
                          "MT_Uneven": "coating_flaw", "MT_Free": "none"}


def test_class_map_rejects_unknown_targets(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("Crack: crack\nScratch: scratchy\n")
    with pytest.raises(LabelledDataError, match="unknown target class.*scratchy"):
        ClassMap.from_file(p)


def test_mask_folder_through_class_map(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 2, seed=1)
    data = open_labelled("mask-folder", root, ClassMap.from_file(MT_MAP))
    assert len(data) == 8
    by_label = {it.label: i for i, it in enumerate(data.items)}
    for label, cls in (("MT_Crack", "crack"), ("MT_Blowhole", "coating_flaw"), ("MT_Break", "chip")):
        image, mask = data.load(by_label[label])
        raw = cv2.imread(str(data.items[by_label[label]].mask_path), cv2.IMREAD_GRAYSCALE)
        assert image.shape == mask.shape
        assert set(np.unique(mask)) == {CLASS_IDS["good_surface"], CLASS_IDS[cls]}
        assert ((mask == CLASS_IDS[cls]) == (raw > 127)).all()  # the rim at 90 is not defect
    _, free = data.load(by_label["MT_Free"])
    assert (free == CLASS_IDS["good_surface"]).all()
    rep = data_report(data)
    assert rep["per_target"] == {"chip": 2, "coating_flaw": 2, "crack": 2, "none": 2} and rep["n_defective"] == 6


def test_mask_folder_errors_are_collected(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 2, seed=2)
    crack = sorted((root / "MT_Crack" / "Imgs").glob("*.png"))
    crack[0].unlink()  # missing mask
    blow = sorted((root / "MT_Blowhole" / "Imgs").glob("*.png"))[0]
    cv2.imwrite(str(blow), np.zeros((7, 9), np.uint8))  # size mismatch
    (root / "MT_Scratch" / "Imgs").mkdir(parents=True)  # unknown label
    with pytest.raises(LabelledDataError) as exc:
        open_labelled("mask-folder", root, ClassMap.from_file(MT_MAP))
    msg = str(exc.value)
    assert "3 problem(s)" in msg and "no mask" in msg and "mask 9x7 px" in msg and "unknown label 'MT_Scratch'" in msg


def test_empty_mask_in_defect_folder_is_a_warning(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 2, seed=3)
    m = sorted((root / "MT_Crack" / "Imgs").glob("*.png"))[0]
    cv2.imwrite(str(m), np.zeros(cv2.imread(str(m)).shape[:2], np.uint8))
    data = open_labelled("mask-folder", root, ClassMap.from_file(MT_MAP))
    assert len(data.warnings) == 1 and "empty mask" in data.warnings[0]


def test_images_and_masks_layout_knows_which_images_have_defects(tmp_path):
    for d in ("images", "masks"):
        (tmp_path / d).mkdir()
    m = np.ones((40, 40), np.uint8)
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((40, 40), 120, np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), m)
    m2 = m.copy()
    m2[5:9, 5:30] = CLASS_IDS["crack"]
    cv2.imwrite(str(tmp_path / "images" / "b.png"), np.full((40, 40), 121, np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "b.png"), m2)
    data = open_labelled("mask-folder", tmp_path)
    assert [it.has_defect for it in data.items] == [False, True]


# -- COCO (CVAT / Label Studio) ----------------------------------------------------------------------


def _coco_export(root: Path, *, cats=("Crack", "Blowhole", "Free")) -> Path:
    """A CVAT-style export: annotations/instances_default.json + images/."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    crack = np.zeros((50, 70), bool)
    crack[20:23, 10:60] = True
    pore = np.zeros((50, 70), bool)
    pore[30:38, 30:38] = True
    images, anns = [], []
    for i, name in enumerate(("a.jpg", "b.jpg", "c.jpg")):
        cv2.imwrite(str(root / "images" / name), np.full((50, 70), 140 + i, np.uint8))
        images.append({"id": i + 1, "file_name": name, "height": 50, "width": 70})
    cat_ids = {n: k + 1 for k, n in enumerate(cats)}
    anns.append({"id": 1, "image_id": 1, "category_id": cat_ids[cats[0]], "segmentation": mask_to_polygons(crack),
                 "bbox": [10, 20, 50, 3], "iscrowd": 0, "area": 150})
    anns.append({"id": 2, "image_id": 2, "category_id": cat_ids[cats[1]], "segmentation": rle_encode(pore),
                 "bbox": [30, 30, 8, 8], "iscrowd": 1, "area": 64})
    doc = {"images": images, "annotations": anns,
           "categories": [{"id": v, "name": k, "supercategory": ""} for k, v in cat_ids.items()]}
    path = root / "annotations" / "instances_default.json"
    path.write_text(json.dumps(doc))
    return path


def _cvat_map(tmp_path) -> ClassMap:
    return ClassMap({"Crack": "crack", "Blowhole": "coating_flaw", "Free": "none"})


def test_coco_export_through_class_map(tmp_path):
    path = _coco_export(tmp_path / "exp")
    data = read_coco_labelled(path, _cvat_map(tmp_path))
    assert [it.has_defect for it in data.items] == [True, True, False]  # c.jpg has no annotation
    _, m0 = data.load(0)
    _, m1 = data.load(1)
    _, m2 = data.load(2)
    assert (m0 == CLASS_IDS["crack"]).sum() == 150 and (m0[21, 30] == CLASS_IDS["crack"])
    assert (m1 == CLASS_IDS["coating_flaw"]).sum() == 64
    assert (m2 == CLASS_IDS["good_surface"]).all()


def test_coco_errors_are_collected(tmp_path):
    path = _coco_export(tmp_path / "exp", cats=("Crack", "Hole", "Free"))
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 9, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": []})
    doc["images"].append({"id": 4, "file_name": "gone.jpg", "height": 50, "width": 70})
    doc["images"][0]["width"] = 71
    path.write_text(json.dumps(doc))
    with pytest.raises(LabelledDataError) as exc:
        read_coco_labelled(path, _cvat_map(tmp_path))
    msg = str(exc.value)
    assert "unknown label(s) ['Hole']" in msg
    assert "bounding box only" in msg
    assert "'gone.jpg' not found" in msg
    assert "image is 70x50 px, the COCO file says 71x50" in msg


def _coco_rle_string(counts: list[int]) -> str:
    """pycocotools' rleToString (delta against the count two back, 5-bit groups, '0'-based)."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def test_compressed_rle_counts_round_trip():
    from magspect.datasets.coco import rle_counts as _rle_counts

    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.integers(0, 5000, int(rng.integers(1, 30))).tolist()
        assert _rle_counts(_coco_rle_string(counts)) == counts
    assert _rle_counts([1, 2, 3]) == [1, 2, 3]


def test_coco_needs_a_class_map(tmp_path):
    path = _coco_export(tmp_path / "exp")
    with pytest.raises(LabelledDataError, match="needs a class map"):
        open_labelled("coco", path)


# -- split -------------------------------------------------------------------------------------------


def test_split_is_by_content_and_stable(tmp_path):
    root = write_toy_tiles(tmp_path / "tiles", 6, seed=4)
    cm = ClassMap.from_file(MT_MAP)
    s1 = split_by_content(open_labelled("mask-folder", root, cm), 0.3)
    s2 = split_by_content(open_labelled("mask-folder", root, cm), 0.3)
    assert s1.val_sha256 == s2.val_sha256 and s1.train_sha256 == s2.train_sha256
    assert len(s1.train) + len(s1.val) == 24 and 0 < len(s1.val) < 24
    val_names = {it.image_path.name for it in s1.val.items}
    # renaming files does not move them across the split; adding images does not move the others
    other = tmp_path / "renamed"
    shutil.copytree(root, other)
    for p in sorted(other.rglob("*.jpg")):
        p.rename(p.with_name("x" + p.name))
        p.with_suffix(".png").rename(p.with_name("x" + p.stem + ".png"))
    write_toy_tiles(other, 3, seed=99)
    s3 = split_by_content(open_labelled("mask-folder", other, cm), 0.3)
    assert {it.image_path.name[1:] for it in s3.val.items if it.image_path.name.startswith("x")} == val_names
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_content(open_labelled("mask-folder", root, cm), 1.0)


def test_is_validation_fraction():
    hits = sum(is_validation(f"{i:064x}", 0.2) for i in range(4000))
    assert 0.17 < hits / 4000 < 0.23
    assert is_validation("ab" * 32, 0.2, "s1") == is_validation("ab" * 32, 0.2, "s1")


def test_magnetic_tile_through_the_importer():
    if not MT_DATA.is_dir():
        pytest.skip(f"Magnetic Tile data not found at {MT_DATA} (see ../shared/data/magnetic_tile/README.md)")
    data = open_labelled("mask-folder", MT_DATA, ClassMap.from_file(MT_MAP))
    rep = data_report(data)
    assert rep["n_images"] > 500 and set(rep["per_target"]) == {"crack", "chip", "coating_flaw", "none"}
    assert rep["per_label"]["MT_Fray"] > 0 and rep["per_target"]["chip"] == rep["per_label"]["MT_Break"] + rep[
        "per_label"]["MT_Fray"]
    image, mask = data.load(next(i for i, it in enumerate(data.items) if it.label == "MT_Crack"))
    assert image.shape[:2] == mask.shape and (mask == CLASS_IDS["crack"]).any()
    split = split_by_content(data, 0.2)
    assert 0.15 < len(split.val) / len(data) < 0.25 and split.as_dict()["n_val_defective"] > 10
