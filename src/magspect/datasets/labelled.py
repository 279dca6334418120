"""Real labelled images on disk (torch-free): mask folders and a class map to magspect's classes.

Two layouts are read:

* **per-label folders** (the Magnetic Tile dataset's): ``ROOT/<Label>/Imgs/<id>.jpg`` with a binary
  mask ``<id>.png`` beside it; every defect pixel (> 127) takes the class that the class map gives
  ``<Label>``. A label mapped to ``none`` has no defect (its masks must be empty).
* **images + masks**: ``ROOT/images/<stem>.<ext>`` with ``ROOT/masks/<stem>.png`` whose pixel values
  are magspect class ids already (0 background, 1 good surface, 2 crack, 3 chip, 4 coating flaw).

Problems are collected, not raised one at a time: missing masks, size mismatches and unknown labels
are errors; empty masks in a defect folder are reported as warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import yaml

from magspect.types import CLASS_IDS, DEFECT_CLASSES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

#: Magnetic Tile labels -> magspect classes (a Break or Fray is material missing at an edge: a chip;
#: a Blowhole is a pore/pit; Uneven is a surface flaw, closest to a coating flaw).
MAGNETIC_TILE_CLASS_MAP: dict[str, str] = {
    "MT_Free": "none",
    "MT_Crack": "crack",
    "MT_Break": "chip",
    "MT_Fray": "chip",
    "MT_Blowhole": "coating_flaw",
    "MT_Uneven": "coating_flaw",
}


class LabelledDataError(ValueError):
    """The folder cannot be used; the message lists every problem found."""


@dataclass(frozen=True)
class ClassMap:
    """Source label -> magspect defect class (``crack``, ``chip``, ``coating_flaw``) or ``none``."""

    mapping: dict[str, str]

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.mapping.items() if v not in (*DEFECT_CLASSES, "none")}
        if bad:
            raise LabelledDataError(
                f"class map: unknown target class(es) {bad}; use one of {', '.join(DEFECT_CLASSES)} or none"
            )

    @classmethod
    def from_file(cls, path: str | Path) -> ClassMap:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise LabelledDataError(f"{path}: cannot read class map: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
            raise LabelledDataError(f"{path}: a class map is a YAML mapping of label: class")
        return cls(dict(data))

    def target(self, label: str) -> str:
        try:
            return self.mapping[label]
        except KeyError:
            raise LabelledDataError(f"unknown label {label!r}; the class map knows {sorted(self.mapping)}") from None


@dataclass(frozen=True)
class LabelledImage:
    image_path: Path
    mask_path: Path
    label: str | None  # source label (per-label layout) or None (class-id masks)
    target: str | None  # magspect class for the mask's defect pixels, or "none"

    @property
    def has_defect(self) -> bool:
        """Per-label layout: does the label map to a defect class? (Class-id masks: see the mask.)"""
        return self.target not in (None, "none")


@dataclass
class LabelledFolder:
    root: Path
    items: list[LabelledImage]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image as stored: uint8/uint16 gray or BGR, class-id mask uint8) for item ``i``."""
        it = self.items[i]
        image = cv2.imread(str(it.image_path), cv2.IMREAD_UNCHANGED)
        raw = cv2.imread(str(it.mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None or raw is None:
            raise LabelledDataError(f"{it.image_path}: image or mask cannot be decoded")
        if it.label is None:
            return image, raw.astype(np.uint8)
        mask = np.full(raw.shape, CLASS_IDS["good_surface"], np.uint8)
        if it.has_defect:
            mask[raw > 127] = CLASS_IDS[it.target]  # masks are not strictly binary: threshold at > 127
        return image, mask


def _size(path: Path) -> tuple[int, int] | None:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if img is None else img.shape[:2]


def read_mask_folder(
    root: str | Path, class_map: ClassMap | None = None, *, check_sizes: bool = True
) -> LabelledFolder:
    """Index a labelled folder; raise :class:`LabelledDataError` listing every problem found."""
    root = Path(root)
    if not root.is_dir():
        raise LabelledDataError(f"{root}: no such folder")
    errors: list[str] = []
    warnings: list[str] = []
    items: list[LabelledImage] = []
    if (root / "images").is_dir():
        masks = root / "masks"
        for img in sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            m = masks / f"{img.stem}.png"
            if not m.is_file():
                errors.append(f"{img}: no mask {m}")
                continue
            items.append(LabelledImage(img, m, None, None))
    else:
        class_map = class_map or ClassMap(MAGNETIC_TILE_CLASS_MAP)
        label_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not label_dirs:
            raise LabelledDataError(f"{root}: neither images/ + masks/ nor per-label folders found")
        for d in label_dirs:
            if d.name not in class_map.mapping:
                errors.append(f"{d}: unknown label {d.name!r} (not in the class map: {sorted(class_map.mapping)})")
                continue
            target = class_map.mapping[d.name]
            sub = d / "Imgs" if (d / "Imgs").is_dir() else d
            for img in sorted(p for p in sub.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".bmp", ".tif")):
                m = img.with_suffix(".png")
                if not m.is_file():
                    errors.append(f"{img}: no mask {m.name}")
                    continue
                items.append(LabelledImage(img, m, d.name, target))
    if check_sizes:
        for it in items:
            si, sm = _size(it.image_path), _size(it.mask_path)
            if si is None:
                errors.append(f"{it.image_path}: cannot be decoded")
            elif sm is None:
                errors.append(f"{it.mask_path}: cannot be decoded")
            elif si != sm:
                errors.append(f"{it.image_path}: image is {si[1]}x{si[0]} px, mask {sm[1]}x{sm[0]} px")
            elif it.has_defect:
                raw = cv2.imread(str(it.mask_path), cv2.IMREAD_GRAYSCALE)
                if not (raw > 127).any():
                    warnings.append(f"{it.mask_path}: empty mask in defect folder {it.label}")
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise LabelledDataError(f"{root}: {len(errors)} problem(s):\n  {shown}{more}")
    if not items:
        raise LabelledDataError(f"{root}: no labelled images found")
    return LabelledFolder(root, items, warnings)
