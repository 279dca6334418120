"""Can the surface be inspected in this image at all?

A back-lit (or badly under-exposed) image shows the part as a black silhouette: the chips show, the
dimensions can be measured, but a crack or a coating flaw inside the outline leaves no trace. A
model that finds nothing there has not shown the surface is good, so such a view cannot PASS: the
Inspector sends the part to REVIEW with this module's reason (fail closed).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Defects a back-lit image cannot show: it holds only the silhouette, so a crack or a coating flaw
#: inside the outline leaves no trace (a chip does: it changes the silhouette).
SURFACE_ONLY_CLASSES: tuple[str, ...] = ("crack", "coating_flaw")


def visible_under(lighting: str | None, class_name: str) -> bool:
    """Whether a defect of ``class_name`` can show in an image taken under ``lighting``."""
    return not (lighting == "backlight" and class_name in SURFACE_ONLY_CLASSES)


#: The part's 99th-percentile grey level at or below this fraction of full scale shows no surface.
MAX_SURFACE_P99 = 0.03
#: ... when the background around it is at least this bright (a back light); a dark-field image
#: (dark part, dark background, lit scratches and edges) is not flagged.
MIN_BACKGROUND = 0.3


def hidden_surface(
    image: np.ndarray,
    part_mask: np.ndarray,
    roi: tuple[int, int, int, int] | None = None,
    *,
    view: str = "",
) -> str | None:
    """A reason string when ``image`` shows the part only as a silhouette, else ``None``.

    ``part_mask``: the part's pixels (from metrology, same camera and pose); ``roi``: a box holding
    the part with room to spare (only it is examined).
    """
    x0, y0, x1, y1 = roi if roi is not None else (0, 0, image.shape[1], image.shape[0])
    # every other row and column: grey-level statistics need no more, and this runs on every view
    img = image[y0:y1:2, x0:x1:2]
    if img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_BGR2GRAY)
    full = 65535.0 if img.dtype == np.uint16 else 255.0
    m = np.ascontiguousarray(part_mask[y0:y1:2, x0:x1:2], np.uint8)
    inner = cv2.erode(m, np.ones((5, 5), np.uint8)).astype(bool)  # 4 px in from the outline
    outer = ~cv2.dilate(m, np.ones((9, 9), np.uint8)).astype(bool)  # 8 px out
    if inner.sum() < 50 or outer.sum() < 50:
        return None  # too little of either to tell: metrology has already judged the part's size
    background = float(np.median(img[outer])) / full
    if background < MIN_BACKGROUND:
        return None
    surface_p99 = float(np.percentile(img[inner], 99)) / full
    if surface_p99 <= MAX_SURFACE_P99:
        name = f"{view} view" if view else "view"
        return (
            f"{name} shows the part only as a silhouette (surface at most {surface_p99:.0%} of full scale, "
            f"background {background:.0%}): a back-lit or under-exposed image, so cracks and coating flaws "
            "cannot be seen; inspect a front-lit image of this view"
        )
    return None
