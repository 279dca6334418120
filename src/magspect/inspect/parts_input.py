"""Turning files on disk into parts: which images are the views of which part, and their scale.

Convention: ``<part>_top.<ext>`` and ``<part>_side.<ext>`` (also ``-top``/``-side``) are the two views
of part ``<part>``; ``<part>_top_backlight.<ext>`` is a back-lit image of the same view for metrology;
``<part>_top_dome.<ext>`` (``coaxial``, ``dome``, ``darkfield``) the same view under a second front light
(``magspect synth --second-lighting``), kept beside the part, not inspected as a part of its own;
any other image is the top view of a part named after its file. A folder is
searched for images (and its ``images/`` subfolder). A generator folder (one holding
``truth.jsonl``) also gives each image's µm/px and the part's true verdict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_VIEW_RE = re.compile(r"^(?P<part>.+?)[_-](?P<view>top|side)(?:[_-](?P<kind>backlight|coaxial|dome|darkfield))?$",
                       re.IGNORECASE)


class PartsInputError(ValueError):
    pass


@dataclass
class PartFiles:
    part_id: str
    views: dict[str, Path] = field(default_factory=dict)
    backlights: dict[str, Path] = field(default_factory=dict)  # back-lit images of the same views
    second_lights: dict[str, Path] = field(default_factory=dict)  # the same views under a second front light
    um_per_px: dict[str, float] = field(default_factory=dict)  # from truth.jsonl, when present
    truth: dict[str, dict] = field(default_factory=dict)  # view -> truth record


def _images_in(folder: Path) -> list[Path]:
    found = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    sub = folder / "images"
    if sub.is_dir():
        found += [p for p in sorted(sub.iterdir()) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return found


def _truth_index(folder: Path) -> dict[str, dict]:
    """image file name -> truth record, from a generator folder's truth.jsonl."""
    path = folder / "truth.jsonl"
    if not path.is_file():
        return {}
    index: dict[str, dict] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PartsInputError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        name = rec.get("image") or rec.get("image_file") or rec.get("file_name")
        if name:
            index[Path(name).name] = rec
    return index


def collect_parts(paths: list[str | Path]) -> list[PartFiles]:
    """Group image paths (files or folders) into parts, in a stable order."""
    files: list[Path] = []
    truth: dict[str, dict] = {}
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            imgs = _images_in(p)
            if not imgs:
                raise PartsInputError(f"{p}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += imgs
            truth.update(_truth_index(p))
        elif p.is_file():
            files.append(p)
            truth.update(_truth_index(p.parent))
            if p.parent.name == "images":
                truth.update(_truth_index(p.parent.parent))
        else:
            raise PartsInputError(f"{p}: no such file or folder")
    parts: dict[str, PartFiles] = {}
    for f in files:
        rec = truth.get(f.name)
        m = _VIEW_RE.match(f.stem)
        if m and m["kind"]:
            companion = parts.setdefault(m["part"], PartFiles(m["part"]))
            into = companion.backlights if m["kind"].lower() == "backlight" else companion.second_lights
            into[m["view"].lower()] = f
            continue
        if rec is not None and rec.get("part_id") and rec.get("view"):
            part_id, view = str(rec["part_id"]), str(rec["view"])
        elif m:
            part_id, view = m["part"], m["view"].lower()
        else:
            part_id, view = f.stem, "top"
        part = parts.setdefault(part_id, PartFiles(part_id))
        if view in part.views and part.views[view] != f:
            raise PartsInputError(f"part {part_id}: two {view} views ({part.views[view]} and {f})")
        part.views[view] = f
        if rec is not None:
            part.truth[view] = rec
            if rec.get("um_per_px"):
                part.um_per_px[view] = float(rec["um_per_px"])
    return list(parts.values())
