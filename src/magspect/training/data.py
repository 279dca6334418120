"""Training data: part sources (generator, mask folders, COCO) and an endless stream of crops.

A *source* returns whole views as ``(image, class_mask)``: ``image`` HxW or HxWx3 (BGR, the OpenCV
and generator convention) uint8/uint16,
``class_mask`` HxW uint8 with the ids of :data:`magspect.types.CLASS_NAMES`. :class:`CropStream`
turns a source into an endless, seeded stream of aligned, augmented crops, distinct per DDP rank
and per DataLoader worker, with a share of crops centred on a defect so thin cracks are seen and a
share centred on *hard negatives* (look-alikes: dust, lint, water spots, fingerprints, glints, and
the part's outline corners, where chamfers look like chips) so the model learns what not to call.

A source may return a third element, its look-alikes: ``[{"kind": "lint", "bbox_xyxy_px": [x0, y0,
x1, y1]}, ...]`` (the generator's ``truth["nuisances"]``; a rendered cache keeps them in
``lookalikes/<stem>.json``). Hard-negative crops pick a kind first (dust, lint, ..., outline corner),
then one of that kind: 20 dust specks must not drown the one lint fibre, the classic false crack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from magspect.datasets.coco import rle_decode
from magspect.inspect.visibility import SURFACE_ONLY_CLASSES
from magspect.types import CLASS_IDS, CLASS_NAMES

FIRST_DEFECT_ID = CLASS_IDS["crack"]
#: Mask value for pixels without a usable label: the loss and the metrics skip them.
IGNORE_ID = 255


def visible_labels(mask: np.ndarray, lighting: str | None, silhouette: np.ndarray | None = None) -> np.ndarray:
    """The truth mask as the image can show it (teaching a model to find what is not in the image
    only teaches it to guess).

    * On a back-lit view the surface-only defects become :data:`IGNORE_ID`.
    * With ``silhouette`` (bool, True where material is present: the generator's coverage), a
      chip's bitten-off part, where there is no material and the image shows background, is
      labelled background: the model learns the visible fracture face, and the bite, which a
      back-lit silhouette shows exactly, is left to metrology (``geometry_defects``).
    """
    out = mask
    if lighting == "backlight":
        out = mask.copy()
        out[np.isin(mask, [CLASS_IDS[c] for c in SURFACE_ONLY_CLASSES])] = IGNORE_ID
    if silhouette is not None:
        bite = (mask == CLASS_IDS["chip"]) & ~silhouette
        if bite.any():
            out = out.copy() if out is mask else out
            out[bite] = CLASS_IDS["background"]
    return out


_DIVISOR = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_IMAGE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def to_unit_float(image: np.ndarray, in_chans: int) -> np.ndarray:
    """Raw uint8/uint16 image (HxW, or HxWx3 BGR) -> HxWxC float32 in [0, 1], RGB order for C = 3.

    The divisor comes from the dtype (255 or 65535), never from the data: the manifest's rule."""
    try:
        div = _DIVISOR[image.dtype]
    except KeyError:
        raise TypeError(f"expected a uint8 or uint16 image, got {image.dtype}") from None
    x = image.astype(np.float32) / np.float32(div)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[2] == 3 and in_chans == 1:
        x = cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[..., None]
    elif x.shape[2] == 3:
        x = np.ascontiguousarray(x[:, :, ::-1])  # BGR -> RGB
    elif x.shape[2] == 1 and in_chans == 3:
        x = np.repeat(x, 3, axis=2)
    if x.shape[2] != in_chans:
        raise ValueError(f"image has {x.shape[2]} channels, model wants {in_chans}")
    return x


class PartSource(Protocol):
    """Anything that hands out whole views for training: ``(image, mask)`` or
    ``(image, mask, lookalikes)`` (see :func:`unpack_sample`)."""

    def sample(self, rng: np.random.Generator) -> tuple: ...


def unpack_sample(sample: tuple) -> tuple[np.ndarray, np.ndarray, list]:
    """``(image, mask[, lookalikes])`` -> ``(image, mask, lookalikes)`` (empty list when absent)."""
    if len(sample) == 3:
        return sample[0], sample[1], list(sample[2] or [])
    image, mask = sample
    return image, mask, []


def outline_corners(mask: np.ndarray, step: int = 2) -> np.ndarray:
    """``(N, 2)`` (y, x) vertices of the labelled part's outline (polygon fit to 1 % of its
    perimeter): the corners, where chamfers and edge shading look like chips."""
    part = (mask[::step, ::step] > 0).astype(np.uint8)
    contours, _ = cv2.findContours(part, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    pts = []
    for c in contours:
        if len(c) < 3:
            continue
        eps = 0.01 * cv2.arcLength(c, True)
        pts.append(cv2.approxPolyDP(c, eps, True).reshape(-1, 2))
    if not pts:
        return np.zeros((0, 2), np.int64)
    xy = np.concatenate(pts).astype(np.int64) * step
    return xy[:, ::-1].copy()


#: Kind name of the outline-corner hard negatives (the look-alikes' kinds are the generator's).
OUTLINE_KIND = "outline"


def hard_negative_groups(mask: np.ndarray, lookalikes: list) -> dict[str, np.ndarray]:
    """Centres ``(y, x)`` for hard-negative crops by kind: the look-alikes' box centres grouped by
    their kind (``lint``, ``dust``, ...), and the outline's corners (:data:`OUTLINE_KIND`). Kinds
    with no centre inside the view are left out."""
    h, w = mask.shape[:2]
    groups: dict[str, list] = {}
    for item in lookalikes:
        b = item["bbox_xyxy_px"]
        groups.setdefault(item["kind"], []).append([(b[1] + b[3]) // 2, (b[0] + b[2]) // 2])
    arrays = {k: np.array(v, np.int64).reshape(-1, 2) for k, v in groups.items()}
    arrays[OUTLINE_KIND] = outline_corners(mask)
    out = {}
    for k, a in arrays.items():
        a = a[(a[:, 0] >= 0) & (a[:, 0] < h) & (a[:, 1] >= 0) & (a[:, 1] < w)]
        if len(a):
            out[k] = a
    return out


def defect_instances(mask: np.ndarray) -> dict[int, list[np.ndarray]]:
    """The defect instances of a label mask by class id: each an ``(N, 2)`` array of its pixels'
    ``(y, x)`` (8-connected components of one class). Computed once per part, not per crop."""
    out: dict[int, list[np.ndarray]] = {}
    for cid in range(FIRST_DEFECT_ID, len(CLASS_NAMES)):
        sel = (mask == cid).astype(np.uint8)
        if not sel.any():
            continue
        n, labels = cv2.connectedComponents(sel, connectivity=8)
        ys, xs = np.nonzero(labels)
        lab = labels[ys, xs]
        order = np.argsort(lab, kind="stable")
        ys, xs, lab = ys[order], xs[order], lab[order]
        cuts = np.searchsorted(lab, np.arange(1, n + 1))
        out[cid] = [np.stack([ys[a:b], xs[a:b]], axis=1) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]
    return out


def _weighted_key(keys: list, weights: dict | None, rng: np.random.Generator):  # noqa: ANN202
    """One of ``keys``, drawn with ``weights`` (missing keys weigh 1; all equal without weights)."""
    if not weights:
        return keys[int(rng.integers(len(keys)))]
    p = np.array([max(float(weights.get(k, 1.0)), 0.0) for k in keys])
    if p.sum() <= 0:
        return keys[int(rng.integers(len(keys)))]
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


class SynthStreamSource:
    """Renders parts with the generator on demand: a fresh seed per part, or a fixed seed pool."""

    def __init__(
        self,
        specs: list[str],
        views: list[str],
        seed: int = 0,
        n_parts: int | None = None,
        synth: dict | None = None,
    ) -> None:
        self.specs, self.views, self.seed, self.n_parts = list(specs), list(views), seed, n_parts
        self.synth = dict(synth or {})

    def render(self, part_seed: int, spec: str, view: str) -> tuple[np.ndarray, np.ndarray, list]:
        """``(image, visible labels, look-alikes)`` of one view of one part."""
        from magspect.datasets import SynthConfig, generate_part

        synth = dict(self.synth)
        synth.setdefault("views", (view,))
        part = generate_part(spec=spec, seed=int(part_seed), config=SynthConfig(**synth))
        v = part.views[view]
        self.last_truth = v.truth
        sil = v.coverage >= 0.5 if v.coverage is not None else None  # the generator's exact silhouette
        return v.image, visible_labels(v.class_mask, v.truth.get("lighting"), sil), v.truth.get("nuisances", [])

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
        if self.n_parts is None:
            part_seed = int(rng.integers(self.seed + 10_000_000, self.seed + 2**31 - 1))
        else:
            part_seed = self.seed + int(rng.integers(self.n_parts))
        spec = self.specs[int(rng.integers(len(self.specs)))]
        view = self.views[int(rng.integers(len(self.views)))]
        return self.render(part_seed, spec, view)


def _read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f"cannot read {path}")
    if img.ndim == 3 and img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    return img  # BGR when colour, as OpenCV reads it


class FolderSource:
    """``root/images/<stem>.<ext>`` with ``root/masks/<stem>.png`` (class ids as pixel values), and
    optionally ``root/lookalikes/<stem>.json`` (defect look-alikes, for hard negatives)."""

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        images = sorted(p for p in (root / "images").iterdir() if p.suffix.lower() in _IMAGE_EXTS)
        self.pairs = [(p, root / "masks" / f"{p.stem}.png") for p in images]
        self.pairs = [(i, m) for i, m in self.pairs if m.exists()]
        if not self.pairs:
            raise FileNotFoundError(f"no image/mask pairs under {root}/images and {root}/masks")

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img_p, mask_p = self.pairs[i]
        mask = cv2.imread(str(mask_p), cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise OSError(f"bad mask {mask_p}")
        return _read_image(img_p), mask.astype(np.uint8)

    def lookalikes(self, i: int) -> list:
        p = self.pairs[i][1].parent.parent / "lookalikes" / f"{self.pairs[i][0].stem}.json"
        return json.loads(p.read_text()) if p.exists() else []

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
        i = int(rng.integers(len(self)))
        return (*self.load(i), self.lookalikes(i))


def write_pair(
    root: str | Path, stem: str, image: np.ndarray, mask: np.ndarray, lookalikes: list | None = None
) -> None:
    """Write one view in :class:`FolderSource` layout (lossless PNG, uint16 kept)."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "images" / f"{stem}.png"), image)  # BGR when colour
    cv2.imwrite(str(root / "masks" / f"{stem}.png"), mask.astype(np.uint8))
    if lookalikes is not None:
        (root / "lookalikes").mkdir(exist_ok=True)
        (root / "lookalikes" / f"{stem}.json").write_text(json.dumps(lookalikes))


class CocoSource:
    """COCO ``annotations.json``: categories named as :data:`CLASS_NAMES`, painted in id order."""

    def __init__(self, annotations: str | Path) -> None:
        path = Path(annotations)
        coco = json.loads(path.read_text(encoding="utf-8"))
        self.root = path.parent
        names = {c["id"]: c["name"] for c in coco["categories"]}
        unknown = {n for n in names.values() if n not in CLASS_IDS}
        if unknown:
            raise ValueError(f"{path}: categories {sorted(unknown)} are not magspect classes {CLASS_NAMES}")
        self.cat_to_class = {cid: CLASS_IDS[n] for cid, n in names.items()}
        self.images = sorted(coco["images"], key=lambda im: im["id"])
        self.anns: dict[int, list[dict]] = {im["id"]: [] for im in self.images}
        for a in coco["annotations"]:
            self.anns.setdefault(a["image_id"], []).append(a)

    def __len__(self) -> int:
        return len(self.images)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        info = self.images[i]
        image = _read_image(self.root / info["file_name"])
        h, w = image.shape[:2]
        mask = np.zeros((h, w), np.uint8)
        for a in sorted(self.anns.get(info["id"], []), key=lambda a: self.cat_to_class[a["category_id"]]):
            cls = self.cat_to_class[a["category_id"]]
            seg = a["segmentation"]
            if isinstance(seg, dict):
                mask[rle_decode({"size": seg.get("size", [h, w]), "counts": seg["counts"]})] = cls
            else:
                polys = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in seg]
                cv2.fillPoly(mask, polys, int(cls))
        return image, mask

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.load(int(rng.integers(len(self))))


def build_augment(enabled: bool):  # noqa: ANN201
    """albumentations pipeline (geometric ops move the mask with the image)."""
    import albumentations as A

    if not enabled:
        return None
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.VerticalFlip(p=0.5),
            A.RandomRotate90(p=0.5),
            A.RandomBrightnessContrast(brightness_limit=0.15, contrast_limit=0.15, p=0.7),
            A.RandomGamma(gamma_limit=(85, 115), p=0.3),
            A.GaussNoise(std_range=(0.0, 0.03), p=0.4),
            A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.1, 0.6), p=0.15),
        ]
    )


def pick_crop_origin(
    mask: np.ndarray,
    crop: int,
    defect_bias: float,
    rng: np.random.Generator,
    hard_bias: float = 0.0,
    hard_centres: dict[str, np.ndarray] | None = None,
    *,
    instances: dict[int, list[np.ndarray]] | None = None,
    class_weights: dict[int, float] | None = None,
    kind_weights: dict[str, float] | None = None,
) -> tuple[int, int]:
    """Top-left (y, x) of a crop: centred near a random defect *instance* with probability
    ``defect_bias``, near a random hard negative with probability ``hard_bias``, otherwise near a
    random point of the part, sometimes anywhere.

    Defect crops: every instance equally likely (so one-pixel-wide cracks count as much as big
    blisters); with ``class_weights`` (class id -> weight) a class present in the view is drawn
    first with those weights, then one of its instances. ``instances`` (:func:`defect_instances`)
    saves finding them again for every crop. Hard-negative crops: ``hard_centres`` holds one
    ``(N, 2)`` (y, x) array per kind name (:func:`hard_negative_groups`); a kind is drawn first
    (equally, or by ``kind_weights``), then one of its centres."""
    h, w = mask.shape
    centre = None
    u = rng.random()
    if defect_bias <= u < defect_bias + hard_bias and hard_centres:
        group = hard_centres[_weighted_key(list(hard_centres), kind_weights, rng)]
        centre = tuple(int(v) for v in group[int(rng.integers(len(group)))])
    elif u < defect_bias:
        if instances is None:
            instances = defect_instances(mask)
        if instances:
            if class_weights:
                inst = instances[_weighted_key(sorted(instances), class_weights, rng)]
            else:
                inst = [i for c in sorted(instances) for i in instances[c]]
            pts = inst[int(rng.integers(len(inst)))]
            centre = tuple(int(v) for v in pts[int(rng.integers(len(pts)))])
    if centre is None and rng.random() < 0.8:
        ys, xs = np.nonzero(mask[::4, ::4] > 0)
        if len(ys):
            j = int(rng.integers(len(ys)))
            centre = (ys[j] * 4, xs[j] * 4)
    if centre is None:
        centre = (int(rng.integers(h)), int(rng.integers(w)))
    jitter = crop // 3
    cy = centre[0] + int(rng.integers(-jitter, jitter + 1))
    cx = centre[1] + int(rng.integers(-jitter, jitter + 1))
    y0 = int(np.clip(cy - crop // 2, 0, max(h - crop, 0)))
    x0 = int(np.clip(cx - crop // 2, 0, max(w - crop, 0)))
    return y0, x0


def crop_pair(x: np.ndarray, mask: np.ndarray, y0: int, x0: int, crop: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop, padding with zeros (background) where the view is smaller than the crop."""
    xc = x[y0 : y0 + crop, x0 : x0 + crop]
    mc = mask[y0 : y0 + crop, x0 : x0 + crop]
    if xc.shape[0] < crop or xc.shape[1] < crop:
        ph, pw = crop - xc.shape[0], crop - xc.shape[1]
        xc = np.pad(xc, ((0, ph), (0, pw), (0, 0)))
        mc = np.pad(mc, ((0, ph), (0, pw)))
    return xc, mc


class CropStream(IterableDataset):
    """Endless stream of ``(image CxHxW float32 in [0,1], mask HxW int64)`` crops.

    Seeded by ``(seed, rank, worker id)``, so every DDP process and DataLoader worker draws its
    own parts and the whole stream is reproducible for a given world size and worker count.
    """

    def __init__(
        self,
        source: PartSource,
        *,
        crop_px: int,
        in_chans: int,
        defect_bias: float = 0.7,
        hard_bias: float = 0.0,
        class_weights: dict[str, float] | None = None,
        kind_weights: dict[str, float] | None = None,
        crops_per_part: int = 8,
        augment: bool = True,
        seed: int = 0,
        rank: int = 0,
        pool_size: int = 16,
    ) -> None:
        super().__init__()
        self.pool_size = max(1, pool_size)
        self.source, self.crop_px, self.in_chans = source, crop_px, in_chans
        if defect_bias + hard_bias > 1:
            raise ValueError(f"defect_bias + hard_bias must be <= 1, got {defect_bias} + {hard_bias}")
        self.defect_bias, self.crops_per_part, self.augment = defect_bias, crops_per_part, augment
        self.hard_bias = hard_bias
        unknown = sorted(set(class_weights or {}) - set(CLASS_NAMES[FIRST_DEFECT_ID:]))
        if unknown:
            known = ", ".join(CLASS_NAMES[FIRST_DEFECT_ID:])
            raise ValueError(f"class_weights names {', '.join(unknown)}: not defect classes ({known})")
        self.class_weights = {CLASS_IDS[k]: float(v) for k, v in (class_weights or {}).items()} or None
        self.kind_weights = dict(kind_weights or {}) or None
        self.seed, self.rank = seed, rank

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        wid = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.rank, wid])
        aug = build_augment(self.augment)
        if aug is not None:
            aug.set_random_seed(int(rng.integers(2**31)))

        def draw() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None, dict]:
            image, mask, boxes = unpack_sample(self.source.sample(rng))
            hard = hard_negative_groups(mask, boxes) if self.hard_bias > 0 else None
            inst = defect_instances(mask) if self.defect_bias > 0 else {}
            return to_unit_float(image, self.in_chans), mask, hard, inst

        # A pool of parts, each crop from a random member, one member replaced every
        # ``crops_per_part`` crops: consecutive crops (one batch) come from different parts and
        # lightings, so BatchNorm's batch statistics look like its running ones at inference.
        pool = [draw() for _ in range(self.pool_size)]
        n = 0
        while True:
            x, mask, hard, inst = pool[int(rng.integers(len(pool)))]
            y0, x0 = pick_crop_origin(
                mask,
                self.crop_px,
                self.defect_bias,
                rng,
                self.hard_bias,
                hard,
                instances=inst,
                class_weights=self.class_weights,
                kind_weights=self.kind_weights,
            )
            xc, mc = crop_pair(x, mask, y0, x0, self.crop_px)
            if aug is not None:
                out = aug(image=np.ascontiguousarray(xc), mask=np.ascontiguousarray(mc))
                xc, mc = out["image"], out["mask"]
                xc = np.clip(xc, 0.0, 1.0)
                if xc.ndim == 2:
                    xc = xc[..., None]
            yield (
                torch.from_numpy(np.ascontiguousarray(xc.transpose(2, 0, 1), dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(mc, dtype=np.int64)),
            )
            n += 1
            if n % self.crops_per_part == 0:
                pool[int(rng.integers(len(pool)))] = draw()
