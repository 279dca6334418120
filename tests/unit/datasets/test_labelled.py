from pathlib import Path

import cv2
import numpy as np
import pytest

from magspect.datasets.labelled import (
    MAGNETIC_TILE_CLASS_MAP,
    ClassMap,
    LabelledDataError,
    read_mask_folder,
)

MT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "magnetic_tile"


def _write(root, label, stem, size=(40, 50), defect=True, mask_size=None):
    d = root / label / "Imgs"
    d.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(d / f"{stem}.jpg"), np.full(size, 120, np.uint8))
    m = np.zeros(mask_size or size, np.uint8)
    if defect:
        m[10:20, 10:20] = 255
        m[10, 21] = 100  # an anti-aliased edge pixel: below the > 127 threshold
    cv2.imwrite(str(d / f"{stem}.png"), m)


def test_per_label_folder_maps_classes(tmp_path):
    _write(tmp_path, "MT_Crack", "a")
    _write(tmp_path, "MT_Free", "b", defect=False)
    f = read_mask_folder(tmp_path)
    assert [it.label for it in f.items] == ["MT_Crack", "MT_Free"]
    img, mask = f.load(0)
    assert img.shape == (40, 50) and mask[15, 15] == 2 and mask[0, 0] == 1 and mask[10, 21] == 1
    assert (f.load(1)[1] == 1).all()


def test_problems_are_listed_together(tmp_path):
    _write(tmp_path, "MT_Crack", "a", mask_size=(41, 50))
    _write(tmp_path, "MT_Weird", "b")
    (tmp_path / "MT_Crack" / "Imgs" / "c.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))[1])
    with pytest.raises(LabelledDataError) as e:
        read_mask_folder(tmp_path)
    msg = str(e.value)
    assert "3 problem(s)" in msg and "unknown label 'MT_Weird'" in msg and "no mask c.png" in msg
    assert "image is 50x40 px, mask 50x41 px" in msg


def test_empty_defect_mask_is_a_warning(tmp_path):
    _write(tmp_path, "MT_Uneven", "a", defect=False)
    f = read_mask_folder(tmp_path)
    assert len(f.warnings) == 1 and "empty mask" in f.warnings[0]


def test_class_map_file(tmp_path):
    p = tmp_path / "map.yaml"
    p.write_text("Kratzer: crack\nOK: none\n")
    assert ClassMap.from_file(p).target("Kratzer") == "crack"
    p.write_text("Kratzer: scratchy\n")
    with pytest.raises(LabelledDataError, match="unknown target class"):
        ClassMap.from_file(p)


@pytest.mark.skipif(not MT.is_dir(), reason="Magnetic Tile data not found at ../shared/data/magnetic_tile")
def test_reads_the_real_magnetic_tile_folder():
    f = read_mask_folder(MT, ClassMap(MAGNETIC_TILE_CLASS_MAP), check_sizes=False)
    labels = {it.label for it in f.items}
    assert labels == set(MAGNETIC_TILE_CLASS_MAP)
    assert len(f) > 600
    i = next(k for k, it in enumerate(f.items) if it.label == "MT_Blowhole")
    _, mask = f.load(i)
    assert (mask == 4).any()
