"""Write a synthetic dataset to a folder: images, masks, ``annotations.json`` and ``truth.jsonl``.

Layout::

    DIR/images/<part_id>_<view>.png        8/16-bit gray or 8-bit BGR
    DIR/masks/<part_id>_<view>_class.png   uint8 class ids (magspect.types.CLASS_NAMES)
    DIR/masks/<part_id>_<view>_inst.png    instance ids, 0 = none (8-bit; 16-bit above 255 instances)
    DIR/annotations.json                   COCO instance segmentation of the defects
    DIR/truth.jsonl                        one JSON object per image
    DIR/dataset.json                       what made it (config, parts, generator version)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from magspect.datasets._config import SynthConfig
from magspect.datasets._generate import generate_part
from magspect.datasets.coco import annotations_for_view, coco_document

_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
_PNG_MASK = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty (use overwrite to write into it)")


def spec_for_seed(seed: int, spec_ids: Sequence[str]) -> str:
    """The spec a part gets when a dataset mixes specs: drawn from its seed, so it is reproducible."""
    return spec_ids[int(np.random.default_rng([seed, 7]).integers(len(spec_ids)))]


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    return o


def write_dataset(
    out: str | Path,
    parts: Iterable[tuple[str, int]],
    config: SynthConfig | None = None,
    *,
    coco_format: str = "polygon",
    overwrite: bool = False,
    description: str = "magspect synthetic magnets",
    on_part: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Generate and write every (spec_id, seed) in ``parts``. Returns counts of parts, images, defects."""
    config = config or SynthConfig()
    out = Path(out)
    _check_out(out, overwrite)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    n_parts = n_defects = n_nonconf = 0
    part_list: list[list[Any]] = []
    with open(out / "truth.jsonl", "w", encoding="utf-8") as tj:
        for spec_id, seed in parts:
            part = generate_part(spec_id, seed, config)
            part_list.append([spec_id, int(seed)])
            n_parts += 1
            n_nonconf += not part.truth["conforming"]
            for view, rv in part.views.items():
                stem = f"{part.truth['part_id']}_{view}"
                img_name = f"images/{stem}.png"
                cls_name, inst_name = f"masks/{stem}_class.png", f"masks/{stem}_inst.png"
                cv2.imwrite(str(out / img_name), rv.image, _PNG)
                cv2.imwrite(str(out / cls_name), rv.class_mask, _PNG_MASK)
                inst = rv.instance_mask
                cv2.imwrite(str(out / inst_name), inst.astype(np.uint8 if inst.max() < 256 else np.uint16), _PNG_MASK)
                image_id = len(images) + 1
                h, w = rv.class_mask.shape
                images.append({"id": image_id, "file_name": img_name, "width": w, "height": h,
                               "part_id": part.truth["part_id"], "view": view})
                anns += annotations_for_view(image_id, rv.instance_mask, rv.class_mask, rv.truth["defects"],
                                             len(anns) + 1, coco_format)
                n_defects += len(rv.truth["defects"])
                rec = dict(rv.truth, image=img_name, class_mask=cls_name, instance_mask=inst_name, image_id=image_id)
                if rv.backlight is not None:
                    rec["backlight_image"] = f"images/{stem}_backlight.png"
                    cv2.imwrite(str(out / rec["backlight_image"]), rv.backlight, _PNG)
                if rv.second is not None:
                    rec["second_image"] = f"images/{stem}_{rv.truth['second_lighting']}.png"
                    cv2.imwrite(str(out / rec["second_image"]), rv.second, _PNG)
                tj.write(json.dumps(_jsonable(rec), separators=(",", ":")) + "\n")
            if on_part is not None:
                on_part(n_parts)
    (out / "annotations.json").write_text(json.dumps(coco_document(images, anns, description)), encoding="utf-8")
    cfg = {k: _jsonable(dict(v) if isinstance(v, dict) else v) for k, v in dataclasses.asdict(config).items()}
    meta = {"description": description, "config": cfg, "coco_format": coco_format, "parts": part_list}
    (out / "dataset.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return {"parts": n_parts, "images": len(images), "defects": n_defects, "nonconforming": n_nonconf}


def read_truth(path: str | Path) -> list[dict[str, Any]]:
    """Read ``truth.jsonl`` (a file or the dataset folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.jsonl"
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
