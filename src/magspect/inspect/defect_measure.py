"""Defect instances from a class mask, measured in millimetres against the part's fitted outline.

Input: a uint8 class mask (0 background, 1 good_surface, 2 crack, 3 chip, 4 coating_flaw; from the
generator's truth or a model), the view's :class:`~magspect.inspect.metrology.MetrologyResult`
(scale, fitted ideal outline, silhouette) and the spec's zones. Output: ``magspect.types.Defect``.

* length: cracks along their skeleton (plus one pixel for the end pixels); other classes the
  longest extent (max Feret diameter of the pixel squares). width: cracks area / length, others
  the extent across the longest direction.
* depth (chips): the deeper of how far the silhouette falls inside the fitted ideal outline
  within the chip and how far the chip's pixels (its visible fracture face) reach inside it.
* zone: ``corner`` if the defect comes within ``corner_radius_mm`` of a corner of the ideal
  outline, ``edge`` if within ``edge_band_mm`` of the outline, else the view's face. A chip call
  inside a face is reported as a coating flaw (subtype unknown): chips only happen at edges.
"""

from __future__ import annotations

import cv2
import numpy as np

from magspect.inspect.geometry_defects import defect_pixels
from magspect.inspect.metrology import MetrologyResult
from magspect.specs import Spec, get_spec
from magspect.types import CLASS_IDS, Defect

#: A defect must span about 3 px to be detected reliably (shared/brief/magnet-specs.md, imaging practice).
DETECTION_LIMIT_PX = 3.0
#: Chip pieces at most this many pixels apart are one chip: the model can leave a pixel's gap across
#: one broken edge, and two short pieces would each pass a length limit the whole chip breaks
#: (BENCHMARKS.md, "One broken edge, one chip").
CHIP_JOIN_PX = 2
#: Crack pieces at most this many pixels apart are one crack: the model loses a crack where it shows
#: faintly and reports the rest in pieces, one line read as several cracks. 0: none joined.
CRACK_JOIN_PX = 0

_DEFECT_IDS = {CLASS_IDS["crack"]: "crack", CLASS_IDS["chip"]: "chip", CLASS_IDS["coating_flaw"]: "coating_flaw"}


def face_zone(shape: str, view: str) -> str:
    """The face a view looks at: an arc segment's top view sees an end (side) face, its side view
    the curved pole face; every other shape shows its pole face on top."""
    if shape == "arc":
        return "side_face" if view == "top" else "pole_face"
    return "pole_face" if view == "top" else "side_face"


def skeletonize(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a binary mask (bool in, bool out), numpy only."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = img
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            c = p[1:-1, 1:-1]
            b = sum(x.astype(np.int32) for x in n)
            seq = n + [n[0]]
            a = sum(((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.int32) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            remove = (c == 1) & (b >= 2) & (b <= 6) & (a == 1) & cond
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def skeleton_length_px(skel: np.ndarray) -> float:
    """Length of a one-pixel-wide skeleton: Kulpa-weighted orthogonal and diagonal steps."""
    s = np.pad(skel.astype(bool), 1)
    c = s[1:-1, 1:-1]
    right, down = s[1:-1, 2:], s[2:, 1:-1]
    n_orth = int((c & right).sum() + (c & down).sum())
    dr, dl = s[2:, 2:], s[2:, :-2]
    left = s[1:-1, :-2]
    # a diagonal pair already joined through an orthogonal neighbour is not a separate step
    n_diag = int((c & dr & ~right & ~down).sum() + (c & dl & ~left & ~down).sum())
    return 0.948 * n_orth + 1.343 * n_diag  # Kulpa's unbiased chain-code weights


def _feret_px(ys: np.ndarray, xs: np.ndarray) -> tuple[float, float]:
    """Max Feret diameter of a set of pixel squares and the extent across it (px)."""
    corners = np.concatenate([
        np.column_stack([xs + dx, ys + dy]) for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)
    ]).astype(np.float32)
    hull = cv2.convexHull(corners).reshape(-1, 2).astype(np.float64)
    d = hull[:, None, :] - hull[None, :, :]
    dist = np.hypot(d[..., 0], d[..., 1])
    i, j = np.unravel_index(int(np.argmax(dist)), dist.shape)
    length = float(dist[i, j])
    if length == 0:
        return 1.0, 1.0
    axis = (hull[j] - hull[i]) / length
    proj = hull @ np.array([-axis[1], axis[0]])
    return length, float(proj.max() - proj.min())


def _polyline_distance(p: np.ndarray, poly: np.ndarray) -> float:
    a, b = poly[:-1], poly[1:]
    ab = b - a
    t = np.clip(((p - a) * ab).sum(1) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    proj = a + t[:, None] * ab
    return float(np.min(np.hypot(*(p - proj).T)))


def _extent_along_edges(pts: np.ndarray, metrology: MetrologyResult, probe: np.ndarray, reach_px: float) -> float:
    """Extent (px, pixel squares) of ``pts`` along the local direction of the nearest outline edge;
    with ``reach_px`` > 0 (corners) the longest such extent over every edge that near."""
    best, near = 0.0, []
    for e in metrology.edges:
        poly = e.points_xy_px
        near.append((_polyline_distance(probe, poly), poly))
    near.sort(key=lambda t: t[0])
    cands = [near[0]] + [t for t in near[1:] if t[0] <= near[0][0] + reach_px]
    for _, poly in cands:
        seg = np.argmin(np.hypot(*(0.5 * (poly[:-1] + poly[1:]) - probe).T))
        t = poly[seg + 1] - poly[seg]
        t = t / max(np.linalg.norm(t), 1e-12)
        proj = pts @ t
        best = max(best, float(proj.max() - proj.min()) + abs(t[0]) + abs(t[1]))
    return best


def _chip_depth_px(crop: np.ndarray, xy0: tuple[int, int], metrology: MetrologyResult, dist_in: np.ndarray,
                   missing: np.ndarray) -> float:
    """Deepest inward deviation of the silhouette from the ideal outline within a chip (px).

    Silhouette boundary pixels (centres half a pixel inside the true edge) near the chip are
    measured against the ideal outline polygons exactly; without lost material in the silhouette
    (a chip seen face-on) the chip pixels' deepest reach inside the ideal outline is used.
    """
    x0, y0 = xy0
    h, w = crop.shape
    pad = 2
    ya, yb, xa, xb = max(y0 - pad, 0), y0 + h + pad, max(x0 - pad, 0), x0 + w + pad
    region = np.zeros_like(missing[ya:yb, xa:xb], np.uint8)
    region[y0 - ya:y0 - ya + h, x0 - xa:x0 - xa + w] = crop
    region = cv2.dilate(region, np.ones((5, 5), np.uint8)) > 0
    if not (missing[ya:yb, xa:xb] & region).any():
        return float(dist_in[y0:y0 + h, x0:x0 + w][crop].max())
    cnt = metrology.contour_xy_px
    sel = (cnt[:, 0] >= xa) & (cnt[:, 0] < xb) & (cnt[:, 1] >= ya) & (cnt[:, 1] < yb)
    sel[sel] = region[cnt[sel, 1].astype(int) - ya, cnt[sel, 0].astype(int) - xa]
    pts = cnt[sel]
    if len(pts) == 0:
        return float(dist_in[ya:yb, xa:xb][missing[ya:yb, xa:xb] & region].max())
    polys = [p.astype(np.float32).reshape(-1, 1, 2) for p in metrology.ideal_outline_xy_px]
    depth = 0.0
    for x, y in pts:
        d = min(abs(cv2.pointPolygonTest(poly, (float(x), float(y)), True)) for poly in polys)
        depth = max(depth, d)
    return max(depth - 0.5, 0.0)


def measure_defects(
    class_mask: np.ndarray,
    metrology: MetrologyResult,
    spec: Spec | str,
    *,
    probs: np.ndarray | None = None,
    min_area_px: int = 3,
    min_span_px: float = DETECTION_LIMIT_PX,
    chip_join_px: int = CHIP_JOIN_PX,
    crack_join_px: int = CRACK_JOIN_PX,
) -> list[Defect]:
    """Every connected defect instance in ``class_mask`` (8-connectivity), measured.

    Instances smaller than ``min_area_px`` pixels or shorter than ``min_span_px`` (their length as
    measured below) are under the system's detection limit and left out: a one- or two-pixel blob
    cannot be told from dust or noise.

    ``chip_join_px``: chip pieces at most this many pixels apart are one chip (the segmentation can
    leave a pixel's gap across one broken edge), measured on the pieces' own pixels (the gap is not
    filled). 0: none joined. ``crack_join_px``: the same for crack pieces (the length is the pieces'
    skeletons together, the gaps not counted).

    ``probs``: optional per-pixel class probabilities ``(H, W, C)``; a defect's ``confidence`` is
    the mean probability of its class over its pixels (1.0 without).
    """
    spec = spec if isinstance(spec, Spec) else get_spec(spec)
    cm = np.asarray(class_mask)
    if cm.shape != metrology.part_mask.shape:
        raise ValueError(f"class mask shape {cm.shape} != the measured image's {metrology.part_mask.shape}")
    if probs is not None and probs.shape[:2] != cm.shape:
        raise ValueError(f"probs shape {probs.shape} does not match the class mask {cm.shape}")
    mm = metrology.mm_per_px
    ideal = metrology.ideal_mask()
    dist_in = metrology.inner_distance_px()  # px to the outline
    missing: np.ndarray | None = None  # material lost from the ideal outline: needed for chips only
    corners = np.asarray(metrology.corners_xy_px, float).reshape(-1, 2)
    edge_band_px = spec.zones.edge_band_mm / mm
    corner_px = spec.zones.corner_radius_mm / mm
    face = face_zone(metrology.shape, metrology.view)
    out: list[Defect] = []
    # one pass over the whole mask: the box holding every defect pixel; each class is looked for there
    ax, ay, aw, ah = cv2.boundingRect(defect_pixels(cm).view(np.uint8))
    if aw == 0 or ah == 0:
        return out
    cm_box = cm[ay : ay + ah, ax : ax + aw]
    for cid, cname in _DEFECT_IDS.items():
        binary = (cm_box == cid).astype(np.uint8)
        bx, by, bw, bh = cv2.boundingRect(binary)  # label only the box holding this class's pixels
        if bw == 0 or bh == 0:
            continue
        own = binary[by : by + bh, bx : bx + bw]
        joined = own
        join_px = {"chip": chip_join_px, "crack": crack_join_px}.get(cname, 0)
        if join_px > 0:
            # one broken edge is one chip, one crack one crack: pieces of it the segmentation left a gap
            # of up to join_px between are labelled together (each measured on its own pixels only)
            k_size = 2 * ((join_px + 1) // 2) + 1  # each piece grown half the gap (3x3: gaps of 1-2 px)
            joined = cv2.dilate(own, np.ones((k_size, k_size), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        bx, by = bx + ax, by + ay  # the class's box in image coordinates
        for k in range(1, n):
            area_px = int(stats[k, cv2.CC_STAT_AREA])  # of a joined chip: with its gaps, an upper bound
            if area_px < min_area_px:
                continue
            x0, y0 = stats[k, cv2.CC_STAT_LEFT], stats[k, cv2.CC_STAT_TOP]
            w, h = stats[k, cv2.CC_STAT_WIDTH], stats[k, cv2.CC_STAT_HEIGHT]
            crop = labels[y0:y0 + h, x0:x0 + w] == k
            if joined is not own:  # the component's own pixels, in their own box
                crop &= own[y0:y0 + h, x0:x0 + w] > 0
                ry, rx = np.nonzero(crop)
                x0, y0, w, h = x0 + rx.min(), y0 + ry.min(), rx.max() - rx.min() + 1, ry.max() - ry.min() + 1
                crop = crop[ry.min():ry.max() + 1, rx.min():rx.max() + 1]
                area_px = int(crop.sum())
                if area_px < min_area_px:
                    continue
            x0, y0 = int(x0 + bx), int(y0 + by)  # back to image coordinates
            ys, xs = np.nonzero(crop)
            ys, xs = ys + y0, xs + x0
            if cname == "crack":
                length_px = skeleton_length_px(skeletonize(crop)) + 1.0
                width_px = area_px / length_px
            else:
                length_px, width_px = _feret_px(ys, xs)
            if length_px < min_span_px:
                continue
            pts = np.column_stack([xs, ys]).astype(float)
            # where it lies: chips and cracks by their nearest pixel, coating flaws by their centre
            if cname == "coating_flaw":
                probe = pts.mean(0, keepdims=True)
                d_edge = max(float(dist_in[int(round(probe[0, 1])), int(round(probe[0, 0]))]) - 0.5, 0.0)
            else:
                d_outline = dist_in[ys, xs]
                i_near = int(np.argmin(d_outline))
                probe = pts[i_near][None]
                d_edge = max(float(d_outline[i_near]) - 0.5, 0.0)
            d_corners = np.hypot(*(corners[None, :, :] - (pts if cname != "coating_flaw" else probe)[:, None, :]).T)
            d_corner = float(d_corners.min()) if d_corners.size else np.inf
            edge_index = None
            if d_corner <= corner_px:
                zone = "corner"
                edge_index = int(np.argmin(d_corners.min(axis=1))) + 1  # corner number
            elif d_edge <= edge_band_px:
                zone = "edge"
                if metrology.edges:
                    edge_index = min(metrology.edges, key=lambda e: _polyline_distance(probe, e.points_xy_px)).index
            else:
                zone = face
            if cname == "chip" and zone == face:
                # a chip is material missing at an edge or corner: a "chip" called inside a face, clear
                # of every edge, is a surface flaw (a dark-field blister looks like a fracture face)
                cname = "coating_flaw"
                length_px, width_px = _feret_px(ys, xs)
            if cname == "chip":  # along the edge (corner chips: the longer leg), width = depth
                length_px = _extent_along_edges(pts, metrology, probe, corner_px if zone == "corner" else 0.0)
            depth_mm = None
            if cname == "chip":
                # the deeper of the silhouette's loss and the chip's visible fracture face
                reach_px = float(dist_in[ys, xs].max())
                if missing is None:
                    missing = (ideal > 0) & (metrology.part_mask == 0)
                depth_mm = max(_chip_depth_px(crop, (x0, y0), metrology, dist_in, missing), reach_px) * mm
                width_px = depth_mm / mm
            subtype = None
            if cname == "chip":
                subtype = "corner_chip" if zone == "corner" else "edge_chip"
            elif cname == "crack":
                subtype = {"corner": "corner_crack", "edge": "edge_crack"}.get(zone, "face_crack")
            conf = 1.0
            if probs is not None:
                conf = float(np.clip(np.mean(probs[ys, xs, cid]), 0.0, 1.0))
            out.append(Defect(
                class_name=cname, subtype=subtype, zone=zone, view=metrology.view,
                length_mm=length_px * mm, width_mm=width_px * mm, depth_mm=depth_mm, area_mm2=area_px * mm * mm,
                bbox_xyxy_px=(float(x0), float(y0), float(x0 + w), float(y0 + h)), confidence=conf,
                edge_index=edge_index,
            ))
    return out


__all__ = [
    "CHIP_JOIN_PX",
    "CRACK_JOIN_PX",
    "DETECTION_LIMIT_PX",
    "face_zone",
    "measure_defects",
    "skeleton_length_px",
    "skeletonize",
]
