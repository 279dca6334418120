"""A contact sheet: every surface under every lighting, both views, and a close-up of every defect.

``magspect.datasets.contact_sheet("docs/contact_sheet.png")`` writes the sheet committed under
``docs/``; ``magspect demo`` calls the same function for its output folder.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from magspect.datasets._config import LIGHTINGS, SynthConfig
from magspect.datasets._generate import generate_part

#: (surface, spec) rows of the overview.
SURFACE_ROWS = (
    ("NiCuNi", "def-blk-20x10x5-nicuni"),
    ("Zn", "com-blk-20x10x5-zn"),
    ("epoxy", "ev-arc-r30-r25-40deg"),
    ("phosphate", "com-ring-od20-id10-t5"),
    ("uncoated", "def-disc-d10-t3-nicuni"),
)

#: (label, force_defect, lighting, surface, spec) of the close-ups.
CLOSE_UPS = (
    ("crack / darkfield", "crack", "darkfield", "NiCuNi", "def-blk-20x10x5-nicuni"),
    ("crack / coaxial", "crack", "coaxial", "uncoated", "com-blk-20x10x5-zn"),
    ("edge chip", "chip/edge_chip", "coaxial", "NiCuNi", "com-blk-20x10x5-zn"),
    ("corner chip", "chip/corner_chip", "dome", "Zn", "com-blk-20x10x5-zn"),
    ("blister", "coating_flaw/blister", "coaxial", "NiCuNi", "com-blk-20x10x5-zn"),
    ("peel", "coating_flaw/peel", "dome", "NiCuNi", "com-blk-20x10x5-zn"),
    ("pit", "coating_flaw/pit", "coaxial", "Zn", "com-blk-20x10x5-zn"),
    ("scratch (Cu)", "coating_flaw/scratch", "dome", "NiCuNi", "com-blk-20x10x5-zn"),
    ("rust", "coating_flaw/rust", "dome", "Zn", "com-blk-20x10x5-zn"),
    ("stain", "coating_flaw/stain", "dome", "NiCuNi", "com-blk-20x10x5-zn"),
    ("chip / backlight", "chip", "backlight", "NiCuNi", "com-ring-od20-id10-t5"),
    ("peel on epoxy", "coating_flaw/peel", "coaxial", "epoxy", "ev-arc-r30-r25-40deg"),
)


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    h = tile.shape[0]
    scale = max(0.3, h / 420)
    cv2.rectangle(tile, (0, 0), (tile.shape[1], int(16 * scale / 0.38)), (0, 0, 0), -1)
    cv2.putText(tile, text, (3, int(12 * scale / 0.38)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return tile


def _tile(img: np.ndarray, tile_px: int) -> np.ndarray:
    img = img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return cv2.resize(img, (tile_px, tile_px), interpolation=cv2.INTER_AREA)


def _close_up(rv, tile_px: int, outline: bool) -> np.ndarray | None:  # noqa: ANN001
    if not rv.truth["defects"]:
        return None
    d = rv.truth["defects"][0]
    x0, y0, x1, y1 = d["bbox_xyxy_px"]
    half = int(max(x1 - x0, y1 - y0, 60) * 0.9)
    cx, cy = int((x0 + x1) / 2), int((y0 + y1) / 2)
    h, w = rv.image.shape[:2]
    xa, ya = max(0, cx - half), max(0, cy - half)
    xb, yb = min(w, cx + half), min(h, cy + half)
    crop = rv.image[ya:yb, xa:xb]
    crop = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
    crop = cv2.resize(crop, (tile_px, tile_px), interpolation=cv2.INTER_AREA if half * 2 > tile_px else
                      cv2.INTER_CUBIC)
    if outline:
        m = (rv.instance_mask[ya:yb, xa:xb] == d["instance_id"]).astype(np.uint8)
        m = cv2.resize(m, (tile_px, tile_px), interpolation=cv2.INTER_NEAREST)
        cs, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(crop, cs, -1, (0, 200, 255), 1)
    return crop


def contact_sheet(
    path: str | Path | None = None, tile_px: int = 150, size_px: int = 1024, seed: int = 7, outline: bool = False
) -> np.ndarray:
    """Render the sheet (BGR uint8) and write it as PNG when ``path`` is given."""
    rows = []
    for surface, spec in SURFACE_ROWS:
        tiles = []
        for k, lighting in enumerate(LIGHTINGS):
            cfg = SynthConfig(size_px=size_px, color=True, surface=surface, lighting=lighting, views=("top",),
                              defect_rate=1.0, max_defects=2)
            rv = generate_part(spec, seed + k, cfg).views["top"]
            tiles.append(_label(_tile(rv.image, tile_px), f"{surface} / {lighting}"))
        for lighting in ("coaxial", "darkfield"):
            cfg = SynthConfig(size_px=size_px, color=True, surface=surface, lighting=lighting, views=("side",))
            rv = generate_part(spec, seed, cfg).views["side"]
            tiles.append(_label(_tile(rv.image, tile_px), f"side / {lighting}"))
        rows.append(np.hstack(tiles))
    cols = rows[0].shape[1] // tile_px
    close = []
    for label, force, lighting, surface, spec in CLOSE_UPS:
        for s in range(seed, seed + 12):
            cfg = SynthConfig(size_px=size_px, color=True, surface=surface, lighting=lighting, views=("top",),
                              force_defect=force, max_defects=1, nuisances=False)
            tile = _close_up(generate_part(spec, s, cfg).views["top"], tile_px, outline)
            if tile is not None:
                close.append(_label(tile, label))
                break
    while len(close) % cols:
        close.append(np.zeros((tile_px, tile_px, 3), np.uint8))
    rows += [np.hstack(close[i:i + cols]) for i in range(0, len(close), cols)]
    sheet = np.vstack(rows)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return sheet
