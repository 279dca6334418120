"""COCO instance-segmentation JSON: writer pieces and a reader, so datasets round-trip.

Categories are the defect classes with their pixel class ids (2 crack, 3 chip, 4 coating_flaw).
Segmentations are polygons (default; CVAT and Label Studio import them) or uncompressed RLE
(exact; column-major run lengths starting with a background run, as pycocotools expects).
Polygon coordinates use COCO's pixel-edge convention (pixel column j spans [j, j + 1)) and trace
the centres of the region's boundary pixels, so filling them again gives back the same pixels.
Each annotation carries the defect's truth under ``attributes`` (CVAT reads that key).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from magspect.types import CLASS_IDS, DEFECT_CLASSES

CATEGORIES = [{"id": CLASS_IDS[c], "name": c, "supercategory": "defect"} for c in DEFECT_CLASSES]


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """Uncompressed COCO RLE of a boolean HxW mask."""
    flat = np.asarray(mask, bool).ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"counts": counts, "size": [int(mask.shape[0]), int(mask.shape[1])]}


def rle_counts(counts: Any) -> list[int]:
    """COCO RLE counts: a list already, or the compressed string (pycocotools' LEB128-like code, as
    CVAT and Label Studio export it)."""
    if not isinstance(counts, str):
        return [int(c) for c in counts]
    out: list[int] = []
    s, p = counts.encode(), 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = s[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    """Boolean HxW mask of a COCO RLE (uncompressed counts or the compressed string)."""
    h, w = (int(v) for v in rle["size"])
    counts = rle_counts(rle["counts"])
    vals = np.zeros(len(counts), bool)
    vals[1::2] = True
    flat = np.repeat(vals, counts)
    if flat.size != h * w:
        raise ValueError(f"RLE counts sum to {flat.size}, expected {h * w}")
    return flat.reshape((h, w), order="F")


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Outer boundaries of a mask as COCO polygons (pixel-edge coordinates)."""
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        pts = c.reshape(-1, 2).astype(np.float64) + 0.5
        if len(pts) == 1:
            pts = np.repeat(pts, 3, axis=0)
        elif len(pts) == 2:
            pts = np.concatenate([pts, pts[:1]])
        polys.append([round(float(v), 2) for v in pts.ravel()])
    return polys


def polygons_to_mask(polys: list[list[float]], hw: tuple[int, int]) -> np.ndarray:
    out = np.zeros(hw, np.uint8)
    pts = [np.round((np.asarray(p, np.float64).reshape(-1, 2) - 0.5) * 16).astype(np.int32) for p in polys]
    if pts:
        cv2.fillPoly(out, pts, 1, lineType=cv2.LINE_8, shift=4)
        cv2.polylines(out, pts, True, 1, 1, cv2.LINE_8, 4)
    return out.astype(bool)


def annotations_for_view(
    image_id: int, instance_mask: np.ndarray, class_mask: np.ndarray, defects: list[dict[str, Any]],
    first_ann_id: int, fmt: str = "polygon",
) -> list[dict[str, Any]]:
    """COCO annotations for one image's defects (one per truth defect)."""
    anns = []
    for k, d in enumerate(defects):
        inst = d["instance_id"]
        x0, y0, x1, y1 = (int(v) for v in d["bbox_xyxy_px"])
        crop = instance_mask[y0:y1, x0:x1] == inst
        full = np.zeros(instance_mask.shape, bool)
        full[y0:y1, x0:x1] = crop
        if fmt == "rle":
            seg: Any = rle_encode(full)
        elif fmt == "polygon":
            seg = [[v + (x0 if i % 2 == 0 else y0) for i, v in enumerate(p)] for p in mask_to_polygons(crop)]
        else:
            raise ValueError(f"COCO segmentation format must be 'polygon' or 'rle', got {fmt!r}")
        attrs = {key: d[key] for key in ("subtype", "zone", "view", "length_mm", "width_mm", "depth_mm", "area_mm2",
                                          "edge_index", "instance_id")}
        anns.append({
            "id": first_ann_id + k, "image_id": image_id, "category_id": CLASS_IDS[d["class_name"]],
            "segmentation": seg, "area": int(crop.sum()), "bbox": [x0, y0, x1 - x0, y1 - y0], "iscrowd": 0,
            "attributes": attrs,
        })
    return anns


def coco_document(images: list[dict[str, Any]], annotations: list[dict[str, Any]], description: str) -> dict:
    return {
        "info": {"description": description, "version": "1", "contributor": "magspect synthetic generator"},
        "licenses": [],
        "categories": CATEGORIES,
        "images": images,
        "annotations": annotations,
    }


def read_coco(path: str | Path) -> dict[str, Any]:
    """Load a COCO file: the document plus ``by_image`` (image id -> its annotations)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    by_image: dict[int, list[dict[str, Any]]] = {img["id"]: [] for img in doc["images"]}
    for a in doc["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    doc["by_image"] = by_image
    return doc


def decode_segmentation(ann: dict[str, Any], hw: tuple[int, int]) -> np.ndarray:
    seg = ann["segmentation"]
    return rle_decode(seg) if isinstance(seg, dict) else polygons_to_mask(seg, hw)


def masks_from_coco(doc: dict[str, Any], image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(instance mask int32, defect class mask uint8; 0 where no defect) of one image."""
    img = next(i for i in doc["images"] if i["id"] == image_id)
    hw = (img["height"], img["width"])
    inst = np.zeros(hw, np.int32)
    klass = np.zeros(hw, np.uint8)
    for a in doc["by_image"].get(image_id, []):
        m = decode_segmentation(a, hw)
        inst[m] = a.get("attributes", {}).get("instance_id", a["id"])
        klass[m] = a["category_id"]
    return inst, klass
