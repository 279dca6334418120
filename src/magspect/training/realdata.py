"""Real labelled data for retraining (torch-free): mask folders and COCO exports through a class map,
a deterministic train/validation split by content hash, and a data report.

* Mask folders are read by :func:`magspect.datasets.labelled.read_mask_folder` (per-label folders
  such as Magnetic Tile's ``MT_<Label>/Imgs/<id>.jpg`` + ``.png``, or ``images/`` + ``masks/``).
* COCO files exported by CVAT or Label Studio (:func:`read_coco_labelled`): category *names* go
  through the class map (``Crack: crack``, ``Blowhole: coating_flaw``, ``Free: none``), polygons,
  uncompressed and compressed RLE are painted; images without annotations have no defect.

Both give a :class:`LabelledSet`: ``len``, ``items[i].image_path`` / ``.has_defect``, ``load(i)`` ->
``(image, class-id mask)``, ``warnings``. Problems are collected and raised together as
:class:`~magspect.datasets.labelled.LabelledDataError`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from magspect.datasets.coco import polygons_to_mask, rle_decode
from magspect.datasets.labelled import ClassMap, LabelledDataError, read_mask_folder
from magspect.inspect.backend import sha256_file
from magspect.types import CLASS_IDS, CLASS_NAMES

DEFAULT_SPLIT_SALT = "magspect-split-v1"


class LabelledItem(Protocol):
    image_path: Path

    @property
    def has_defect(self) -> bool: ...


class LabelledSet(Protocol):
    """What retraining and :func:`magspect.inspect.evaluate.evaluate_labelled` need of real data."""

    items: list[Any]
    warnings: list[str]

    def __len__(self) -> int: ...

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]: ...


# -- COCO exports (CVAT, Label Studio) --------------------------------------------------------------------


@dataclass(frozen=True)
class CocoItem:
    image_path: Path
    image_id: int
    hw: tuple[int, int]
    labels: tuple[str, ...]  # source category names painted on this image
    has_defect: bool


def _decode_rle(seg: dict[str, Any], hw: tuple[int, int]) -> np.ndarray:
    h, w = (int(v) for v in seg.get("size", hw))
    if (h, w) != tuple(hw):
        raise ValueError(f"RLE size {h}x{w} differs from the image's {hw[0]}x{hw[1]}")
    return rle_decode(seg)


def _paint(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    if isinstance(seg, dict):
        return _decode_rle(seg, hw)
    if isinstance(seg, list) and seg and all(isinstance(p, list) and len(p) >= 6 for p in seg):
        return polygons_to_mask(seg, hw)
    raise ValueError("no usable segmentation (a bounding box only, or polygons with fewer than 3 points)")


@dataclass
class CocoLabelled:
    """A COCO export read through a class map; see :func:`read_coco_labelled`."""

    path: Path
    class_map: ClassMap
    doc: dict[str, Any]
    items: list[CocoItem]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        it = self.items[i]
        image = cv2.imread(str(it.image_path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise LabelledDataError(f"{it.image_path}: cannot be decoded")
        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        mask = np.full(it.hw, CLASS_IDS["good_surface"], np.uint8)
        cats = {c["id"]: c["name"] for c in self.doc["categories"]}
        anns = self.doc["by_image"].get(it.image_id, [])
        # paint in class-id order so a crack drawn over a coating flaw stays visible (as CocoSource)
        painted = []
        for a in anns:
            target = self.class_map.mapping[cats[a["category_id"]]]
            if target != "none":
                painted.append((CLASS_IDS[target], a))
        for cls, a in sorted(painted, key=lambda t: t[0]):
            mask[_paint(a["segmentation"], it.hw)] = cls
        return image, mask


def _find_image(json_path: Path, file_name: str, image_root: Path | None) -> Path | None:
    name = Path(file_name)
    roots = [image_root] if image_root is not None else []
    up = json_path.parent
    roots += [up, up / "images", up.parent / "images", up.parent]
    for r in roots:
        for cand in (r / name, r / name.name):
            if cand.is_file():
                return cand
    return None


def read_coco_labelled(
    path: str | Path, class_map: ClassMap, *, image_root: str | Path | None = None, check_sizes: bool = True
) -> CocoLabelled:
    """Index a COCO export; raise :class:`LabelledDataError` listing every problem found.

    Images are looked up relative to ``image_root`` (if given), the JSON's folder, ``images/`` beside
    it (CVAT: ``annotations/instances_default.json`` + ``images/``), or its parent folder (Label
    Studio writes ``images/<name>`` into ``file_name``)."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LabelledDataError(f"{path}: cannot read COCO JSON: {exc}") from None
    missing_keys = [k for k in ("images", "annotations", "categories") if k not in doc]
    if missing_keys:
        raise LabelledDataError(f"{path}: not a COCO file (no {', '.join(missing_keys)})")
    errors: list[str] = []
    warnings: list[str] = []
    cats = {c["id"]: str(c["name"]) for c in doc["categories"]}
    unknown = sorted({n for n in cats.values() if n not in class_map.mapping})
    used = {a.get("category_id") for a in doc["annotations"]}
    unknown_used = [n for cid, n in cats.items() if n in unknown and cid in used]
    if unknown_used:
        errors.append(
            f"unknown label(s) {sorted(set(unknown_used))} (not in the class map: {sorted(class_map.mapping)})"
        )
    elif unknown:
        warnings.append(f"categories {unknown} are not in the class map but no annotation uses them")
    by_image: dict[int, list[dict[str, Any]]] = {int(im["id"]): [] for im in doc["images"]}
    for a in doc["annotations"]:
        iid = int(a.get("image_id", -1))
        if iid not in by_image:
            errors.append(f"annotation {a.get('id')}: image id {iid} is not in 'images'")
            continue
        if a.get("category_id") not in cats:
            errors.append(f"annotation {a.get('id')}: category id {a.get('category_id')} is not in 'categories'")
            continue
        by_image[iid].append(a)
    doc["by_image"] = by_image
    items: list[CocoItem] = []
    for im in sorted(doc["images"], key=lambda im: im["id"]):
        iid, fname = int(im["id"]), str(im.get("file_name", ""))
        found = _find_image(path, fname, root)
        if found is None:
            errors.append(f"image {iid}: file {fname!r} not found beside {path}")
            continue
        hw = (int(im.get("height", 0)), int(im.get("width", 0)))
        if check_sizes:
            img = cv2.imread(str(found), cv2.IMREAD_UNCHANGED)
            if img is None:
                errors.append(f"{found}: cannot be decoded")
                continue
            if tuple(img.shape[:2]) != hw:
                errors.append(f"{found}: image is {img.shape[1]}x{img.shape[0]} px, the COCO file says {hw[1]}x{hw[0]}")
                continue
        labels = tuple(sorted({cats[a["category_id"]] for a in by_image[iid]}))
        has_defect = False
        for a in by_image[iid]:
            if cats[a["category_id"]] not in class_map.mapping:
                continue
            try:
                m = _paint(a["segmentation"], hw) if a.get("segmentation") else None
            except (ValueError, KeyError) as exc:
                errors.append(f"annotation {a.get('id')} on {fname}: {exc}")
                continue
            if m is None:
                errors.append(f"annotation {a.get('id')} on {fname}: no segmentation (bounding box only); "
                              "export polygons or masks")
            elif not m.any():
                warnings.append(f"annotation {a.get('id')} on {fname}: empty mask")
            elif class_map.mapping[cats[a["category_id"]]] != "none":
                has_defect = True
        items.append(CocoItem(found, iid, hw, labels, has_defect))
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise LabelledDataError(f"{path}: {len(errors)} problem(s):\n  {shown}{more}")
    if not items:
        raise LabelledDataError(f"{path}: no images")
    return CocoLabelled(path, class_map, doc, items, warnings)


def open_labelled(
    kind: str, path: str | Path, class_map: ClassMap | None = None, image_root: str | Path | None = None
) -> LabelledSet:
    """``kind`` ``mask-folder`` or ``coco``; a COCO file needs a class map."""
    if kind == "mask-folder":
        folder = read_mask_folder(path, class_map)
        for i, it in enumerate(folder.items):  # images/ + masks/: class ids already; defect = any id >= 2
            if it.label is None and it.target is None:
                raw = cv2.imread(str(it.mask_path), cv2.IMREAD_GRAYSCALE)
                ids = [c for c in np.unique(raw) if c >= CLASS_IDS["crack"]] if raw is not None else []
                target = CLASS_NAMES[int(ids[0])] if ids and int(ids[0]) < len(CLASS_NAMES) else "none"
                folder.items[i] = replace(it, target=target)
        return folder
    if kind == "coco":
        if class_map is None:
            raise LabelledDataError("a COCO export needs a class map (--class-map FILE)")
        return read_coco_labelled(path, class_map, image_root=image_root)
    raise LabelledDataError(f"unknown real-data kind {kind!r}; use mask-folder or coco")


def guess_kind(path: str | Path) -> str:
    return "coco" if Path(path).suffix.lower() == ".json" else "mask-folder"


# -- deterministic split -----------------------------------------------------------------------------


def content_sha256(path: str | Path) -> str:
    return sha256_file(path)


def is_validation(image_sha256: str, val_fraction: float, salt: str = DEFAULT_SPLIT_SALT) -> bool:
    """An image's side of the split: a salted hash of its *content* (not name or order), so an image
    stays on its side when others are added, renamed or reordered."""
    u = int(hashlib.sha256(f"{salt}:{image_sha256}".encode()).hexdigest()[:15], 16) / 16**15
    return u < val_fraction


class Subset:
    """Items ``indices`` of a labelled set (same interface)."""

    def __init__(self, base: LabelledSet, indices: list[int]) -> None:
        self.base, self.indices = base, list(indices)
        self.items = [base.items[i] for i in self.indices]
        self.warnings = list(base.warnings)

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.base.load(self.indices[i])


@dataclass(frozen=True)
class Split:
    train: Subset
    val: Subset
    train_sha256: str  # hash of the sorted content hashes (with labels) of each side: lineage
    val_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_train_defective": sum(it.has_defect for it in self.train.items),
            "n_val_defective": sum(it.has_defect for it in self.val.items),
            "train_sha256": self.train_sha256,
            "val_sha256": self.val_sha256,
        }


def _set_hash(entries: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()


def split_by_content(data: LabelledSet, val_fraction: float, salt: str = DEFAULT_SPLIT_SALT) -> Split:
    """Deterministic train/validation split by content hash (see :func:`is_validation`)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train, val, th, vh = [], [], [], []
    for i, it in enumerate(data.items):
        sha = content_sha256(it.image_path)
        label = str(getattr(it, "label", None) or getattr(it, "labels", ""))
        if is_validation(sha, val_fraction, salt):
            val.append(i)
            vh.append(f"{sha} {label}")
        else:
            train.append(i)
            th.append(f"{sha} {label}")
    if not val or not train:
        raise LabelledDataError(
            f"the split left {len(train)} training and {len(val)} validation images; "
            f"need some of each (val_fraction {val_fraction}, {len(data.items)} images)"
        )
    return Split(Subset(data, train), Subset(data, val), _set_hash(th), _set_hash(vh))


# -- report ----------------------------------------------------------------------------------------


def data_report(data: LabelledSet) -> dict[str, Any]:
    """Counts per source label and target class, image sizes, warnings (for ``magspect data check``)."""
    per_label: Counter[str] = Counter()
    per_target: Counter[str] = Counter()
    for it in data.items:
        labels = getattr(it, "labels", None)
        if labels is None:
            labels = (getattr(it, "label", None) or "(class-id mask)",)
        for lab in labels or ("(no annotation)",):
            per_label[lab] += 1
        target = getattr(it, "target", None)
        per_target[target if target else ("defect" if it.has_defect else "none")] += 1
    sizes = [getattr(it, "hw", None) for it in data.items]
    if any(s is None for s in sizes):
        sizes = []
        for it in data.items:
            img = cv2.imread(str(it.image_path), cv2.IMREAD_GRAYSCALE)
            sizes.append(img.shape[:2] if img is not None else (0, 0))
    hs, ws = [s[0] for s in sizes], [s[1] for s in sizes]
    return {
        "n_images": len(data.items),
        "n_defective": sum(it.has_defect for it in data.items),
        "per_label": dict(sorted(per_label.items())),
        "per_target": dict(sorted(per_target.items())),
        "height_px_range": [min(hs), max(hs)] if hs else None,
        "width_px_range": [min(ws), max(ws)] if ws else None,
        "warnings": list(data.warnings),
    }


# -- tiny stand-in data (tests, smoke runs) ------------------------------------------------------------

TOY_LABELS = ("MT_Free", "MT_Crack", "MT_Blowhole", "MT_Break")


def write_toy_tiles(root: str | Path, n_per_label: int = 3, size_px: tuple[int, int] = (72, 140),
                    seed: int = 0) -> Path:
    """A seeded stand-in in the Magnetic Tile layout (``MT_<Label>/Imgs/<id>.jpg`` + ``.png``): gray
    ground surfaces of varied sizes with a dark crack line, a dark round pore or a dark broken edge.
    For tests and smoke runs only."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for label in TOY_LABELS:
        d = root / label / "Imgs"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(n_per_label):
            h, w = (int(v) for v in rng.integers(size_px[0], size_px[1] + 1, 2))
            img = np.clip(rng.normal(150, 8, (h, w)), 0, 255)
            mask = np.zeros((h, w), np.uint8)
            if label == "MT_Crack":
                y0, y1 = int(rng.integers(h // 4, 3 * h // 4)), int(rng.integers(h // 4, 3 * h // 4))
                cv2.line(mask, (w // 8, y0), (7 * w // 8, y1), 255, int(rng.integers(2, 4)))
            elif label == "MT_Blowhole":
                c = (int(rng.integers(w // 4, 3 * w // 4)), int(rng.integers(h // 4, 3 * h // 4)))
                cv2.circle(mask, c, int(rng.integers(4, 8)), 255, -1)
            elif label == "MT_Break":
                x0 = int(rng.integers(0, w // 2))
                pts = np.array([[x0, 0], [x0 + w // 3, 0], [x0 + w // 6, int(rng.integers(8, h // 3))]], np.int32)
                cv2.fillPoly(mask, [pts], 255)
            img[mask > 0] = 45
            edge = cv2.dilate(mask, np.ones((3, 3), np.uint8)) - mask  # in-between values on the rim
            mask[edge > 0] = 90
            stem = f"toy_{seed}_{label}_{k}"
            cv2.imwrite(str(d / f"{stem}.jpg"), img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(str(d / f"{stem}.png"), mask)
    return root
