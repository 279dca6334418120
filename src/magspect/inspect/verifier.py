"""The look-alike verifier: a second, small model that looks again at each defect the segmentation
model reported and says whether it is a real defect or a look-alike (dust, lint, water spot,
fingerprint, glint, an outline's shading). numpy, OpenCV and onnxruntime only.

Why a second stage: the segmentation model sees the whole part and must call every pixel; most of
its false calls are small look-alikes that a closer look at the candidate, with the candidate's own
shape marked, settles (the cascade of proposal + verification that industrial inspection uses to
keep false rejects down without losing sensitivity). It is trained on the segmentation model's own
candidates on synthetic parts whose truth is known (``magspect train-verifier``), so it belongs to
one segmentation model: its manifest records that model's sha256, and the Inspector uses the
bundled verifier only with the model it was trained for.

Input per candidate (``patches``: ``N x C x P x P`` float32, ``P`` = :data:`PATCH_PX`, ``C`` 4 or 6 as
the network's input says, :data:`PATCH_CHANNELS`):
  0. the image around the candidate's box centre at full resolution, minus that patch's mean;
  1. the model's defect pixels (any defect class) in the same window, 0/1;
  2. the candidate's box with a margin, resized to ``P x P`` (area averaging), minus its mean;
  3. the defect pixels in that window (fraction covered);
  4. (6 channels) the part in the first window: pixels the model did not call background, 0/1;
  5. (6 channels) the part in the second window (fraction covered).
The part channels say where the part ends: a line that runs on past the outline lies on top of the
part (a lint fibre, a water spot's ring), not in it, as a crack does.
``features`` (``N x 4``): the class the gate would judge, one-hot (crack, chip, coating_flaw), and the
candidate's mean class probability from the segmentation model.
Output ``logit`` (``N x 1``): real defect if ``sigmoid(logit) >= keep_threshold`` (manifest).

Fail closed: the verifier can only drop a candidate it scores under its threshold; a verifier that
cannot run is an error, and an inspection with an error never passes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

from magspect.inspect.backend import open_session
from magspect.inspect.geometry_defects import defect_pixels
from magspect.types import CLASS_IDS, DEFECT_CLASSES, Defect

VERIFIER_METADATA_KEY = "magspect.verifier"
PATCH_PX = 64
CONTEXT_MARGIN = 0.5  # the context window is the box's longer side x (1 + margin) + 16 px
N_INPUT_CHANNELS = 4  # the bundled verifiers' and subtype classifier's input, and the default layout
#: The patch layouts a candidate network may take (its ONNX input says which): without and with the
#: part channels.
PATCH_CHANNELS = (4, 6)
_LAYOUTS = " or ".join(map(str, PATCH_CHANNELS))  # for messages


def check_patch_channels(channels: int) -> int:
    """``channels`` if it is a patch layout (:data:`PATCH_CHANNELS`); else ValueError."""
    if channels not in PATCH_CHANNELS:
        raise ValueError(f"candidate patches have {_LAYOUTS} channels, not {channels}")
    return channels


class CandidateModelManifest(BaseModel):
    """What the models that look again at a segmentation model's candidates (the look-alike
    verifier, the coating-flaw subtype classifier) share in their embedded manifests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = 1
    name: str
    patch_px: int = PATCH_PX
    segmenter_sha256: str  # the segmentation model whose candidates it was trained on
    # other exports of the same checkpoint it was checked with (e.g. the INT8 one)
    also_for_sha256: tuple[str, ...] = ()
    input_divisor_by_dtype: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_DIVISORS))
    training: dict = Field(default_factory=dict)  # data seeds, counts, validation figures, command
    created_at: str | None = None
    git_commit: str | None = None

    def fits(self, segmenter_sha256: str | None) -> bool:
        """Was it trained (or checked) for the segmentation model with this sha256?"""
        return segmenter_sha256 is not None and segmenter_sha256 in (self.segmenter_sha256, *self.also_for_sha256)

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str) -> CandidateModelManifest:
        return cls.model_validate(json.loads(text))


class OperatingPoint(BaseModel):
    """A verifier's keep threshold and review band for one spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keep_threshold: float = Field(ge=0.0, lt=1.0)
    review_below: float | None = Field(default=None, ge=0.0, le=1.0)


#: What a verifier's operating point can be chosen under: one front light of the generator's
#: (``magspect.datasets.FRONT_LIGHTINGS``), or "suite", the suite's draw of them.
VerifierLighting = Literal["coaxial", "dome", "darkfield", "suite"]


class VerifierManifest(CandidateModelManifest):
    """What a runtime needs to use an exported verifier (embedded in the ONNX metadata)."""

    kind: Literal["verifier"] = "verifier"
    classes: tuple[str, ...] = DEFECT_CLASSES
    keep_threshold: float = Field(ge=0.0, lt=1.0)  # sigmoid(logit) below this: a look-alike
    # kept, but under this: unsure, so the defect can send its part to REVIEW only (a person
    # decides); None or <= keep_threshold: no review band
    review_below: float | None = Field(default=None, ge=0.0, le=1.0)
    # test-time augmentation: a candidate's logit is the mean over this many of its patches' flips
    # and rotations (1: as is; 2: + mirrored; 4: + the other flips; 8: every one, as trained). The
    # operating point above was chosen with it, so it travels with them in the manifest.
    dihedral_views: Literal[1, 2, 4, 8] = 1
    # spec id -> its own operating point (a part family whose look-alikes and limits differ, chosen on
    # that spec's validation parts: `magspect tune-verifier --spec-point`); other specs use the one above
    spec_points: dict[str, OperatingPoint] = Field(default_factory=dict)
    # the one front light (coaxial, dome, darkfield) the operating point above was chosen under, for a
    # station that lights every view that way; None: as trained (``training["lighting"]``), "suite":
    # the suite's draw of lights (`magspect tune-verifier --lighting`)
    lighting: VerifierLighting | None = None


#: Raw pixel value -> [0, 1], by numpy dtype name (as the segmentation model's manifest has it).
DEFAULT_DIVISORS = {"uint8": 255.0, "uint16": 65535.0}
BACKGROUND_ID = CLASS_IDS["background"]


def _divisor(image: np.ndarray, divisor_by_dtype: dict[str, float]) -> np.float32:
    try:
        return np.float32(divisor_by_dtype[image.dtype.name])
    except KeyError:
        raise ValueError(f"no input scaling for dtype {image.dtype.name!r}") from None


def _window(a: np.ndarray, x0: int, y0: int, side: int, fill: int | None = None) -> np.ndarray:
    """``a[y0:y0+side, x0:x0+side]``; where the window leaves the image, edge pixels repeated, or
    ``fill`` when given."""
    h, w = a.shape[:2]
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if xa >= xb or ya >= yb:
        return np.full((side, side), 0 if fill is None else fill, a.dtype)
    win = a[ya:yb, xa:xb]
    if (xa, ya, xb, yb) != (x0, y0, x0 + side, y0 + side):
        pad = ((ya - y0, y0 + side - yb), (xa - x0, x0 + side - xb))
        win = np.pad(win, pad, mode="edge") if fill is None else np.pad(win, pad, constant_values=fill)
    return win


def candidate_patches(
    image: np.ndarray,
    class_mask: np.ndarray,
    boxes: Sequence[Sequence[float]],
    divisor_by_dtype: dict[str, float] = DEFAULT_DIVISORS,
    patch_px: int = PATCH_PX,
    channels: int = N_INPUT_CHANNELS,
) -> np.ndarray:
    """The verifier's input for each candidate box ``(x0, y0, x1, y1)`` (px, exclusive ends).

    ``image``: the view as decoded (HxW or HxWx3 BGR, uint8/uint16); ``class_mask``: the
    segmentation model's class ids (any defect class marks the candidate's pixels; anything but
    background, the part). ``channels``: 4, or 6 with the part (module docstring). Only the
    windows around the candidates are converted.
    """
    check_patch_channels(channels)
    div = _divisor(image, divisor_by_dtype)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)

    def gray(x0: int, y0: int, side: int) -> np.ndarray:
        return _window(image, x0, y0, side).astype(np.float32) / div

    def mask(x0: int, y0: int, side: int) -> np.ndarray:
        return defect_pixels(_window(class_mask, x0, y0, side)).astype(np.float32)

    def part(x0: int, y0: int, side: int) -> np.ndarray:  # beyond the image's edge is off the part
        return (_window(class_mask, x0, y0, side, fill=BACKGROUND_ID) != BACKGROUND_ID).astype(np.float32)

    out = np.empty((len(boxes), channels, patch_px, patch_px), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        nx, ny = int(round(cx - patch_px / 2)), int(round(cy - patch_px / 2))
        native = gray(nx, ny, patch_px)
        out[i, 0] = native - native.mean()
        out[i, 1] = mask(nx, ny, patch_px)
        side = max(patch_px, int(np.ceil(max(x1 - x0, y1 - y0) * (1 + CONTEXT_MARGIN))) + 16)
        sx, sy = int(round(cx - side / 2)), int(round(cy - side / 2))
        ctx, ctx_m = gray(sx, sy, side), mask(sx, sy, side)
        ctx_p = part(sx, sy, side) if channels == 6 else None
        if side != patch_px:
            ctx = cv2.resize(ctx, (patch_px, patch_px), interpolation=cv2.INTER_AREA)
            ctx_m = cv2.resize(ctx_m, (patch_px, patch_px), interpolation=cv2.INTER_AREA)
            if ctx_p is not None:
                ctx_p = cv2.resize(ctx_p, (patch_px, patch_px), interpolation=cv2.INTER_AREA)
        out[i, 2] = ctx - ctx.mean()
        out[i, 3] = ctx_m
        if ctx_p is not None:
            out[i, 4] = part(nx, ny, patch_px)
            out[i, 5] = ctx_p
    return out


N_FEATURES = len(DEFECT_CLASSES) + 1


def dihedral_views(patches: np.ndarray, k: int) -> np.ndarray:
    """``k * N`` patches: the ``N x C x P x P`` ``patches`` as they are, then mirrored left-right
    (``k`` >= 2), upside down and both (``k`` >= 4), and those four transposed (``k`` = 8)."""
    if k not in (1, 2, 4, 8):
        raise ValueError(f"dihedral views: 1, 2, 4 or 8, got {k}")
    x = np.asarray(patches, np.float32)
    views = [x, x[..., ::-1], x[..., ::-1, :], x[..., ::-1, ::-1]][: min(k, 4)]
    if k == 8:
        views += [v.swapaxes(-1, -2) for v in views]
    return np.ascontiguousarray(np.concatenate(views))


def candidate_features(defects: Sequence[Defect]) -> np.ndarray:
    """``N x 4``: class one-hot (crack, chip, coating_flaw) and the model's confidence."""
    out = np.zeros((len(defects), N_FEATURES), np.float32)
    for i, d in enumerate(defects):
        out[i, DEFECT_CLASSES.index(d.class_name)] = 1.0
        out[i, -1] = d.confidence
    return out


class VerifierError(RuntimeError):
    """The verifier file cannot be used (missing, no manifest, wrong inputs)."""


def candidate_session(
    path: Path, threads: int | None, providers: Sequence[str] | None, metadata_key: str,
    error: type[Exception], what: str,
) -> tuple[ort.InferenceSession, str, str, int]:
    """An onnxruntime session for a model over candidate patches (inputs ``patches`` and
    ``features``), its sha256, its manifest JSON and the channels its patches have (read from the
    graph's input: one of :data:`PATCH_CHANNELS`); ``error`` names what is wrong."""
    opts = ort.SessionOptions()
    # a few 64 px patches per part: one thread, and no spinning pool stealing the cores the
    # segmentation model and metrology need
    opts.intra_op_num_threads = threads or 1
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session, sha, meta = open_session(path, opts, providers, metadata_key, error, what)
    inputs = {i.name: i for i in session.get_inputs()}
    if set(inputs) != {"patches", "features"}:
        raise error(f"{what} {path}: inputs {sorted(inputs)}, expected patches and features")
    shape = inputs["patches"].shape
    channels = shape[1] if len(shape) == 4 else None
    if channels not in PATCH_CHANNELS:
        raise error(f"{what} {path}: patches input {shape}, expected N x {_LAYOUTS} x P x P")
    return session, sha, meta, int(channels)


def candidate_inputs(
    image: np.ndarray, class_mask: np.ndarray, defects: Sequence[Defect], manifest: CandidateModelManifest,
    channels: int = N_INPUT_CHANNELS,
) -> tuple[np.ndarray, np.ndarray]:
    """``(patches, features)`` for ``defects`` (all from one view; each needs its ``bbox_xyxy_px``),
    the patches with ``channels`` channels (what the network takes)."""
    if any(d.bbox_xyxy_px is None for d in defects):
        raise ValueError("every defect to look at again needs its pixel box")
    patches = candidate_patches(image, class_mask, [d.bbox_xyxy_px for d in defects],
                                manifest.input_divisor_by_dtype, manifest.patch_px, channels)
    return patches, candidate_features(defects)


class Verifier:
    """An exported look-alike verifier, ready to run. Thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: str | Path, *, threads: int | None = 1, providers: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.session, self.sha256, meta, self.channels = candidate_session(
            self.path, threads, providers, VERIFIER_METADATA_KEY, VerifierError, "verifier"
        )
        self.manifest = VerifierManifest.from_json(meta)
        # the point for specs without their own: built once, not per view
        self._point = OperatingPoint(keep_threshold=self.manifest.keep_threshold,
                                     review_below=self.manifest.review_below)

    @property
    def name(self) -> str:
        """The manifest's name, with the one front light its operating point was chosen for, else the
        one it was trained for (``verifier_cnn-darkfield``): what results and reports name it by."""
        light = self.manifest.lighting or self.manifest.training.get("lighting")
        return self.manifest.name if light in (None, "suite") else f"{self.manifest.name}-{light}"

    def scores(self, patches: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Probability that each candidate is a real defect (the mean logit over the manifest's
        ``dihedral_views`` of each patch, in one batch)."""
        n = len(patches)
        if n == 0:
            return np.zeros(0, np.float32)
        if np.ndim(patches) != 4 or patches.shape[1] != self.channels:
            raise ValueError(f"verifier {self.path.name} takes {self.channels}-channel patches, "
                             f"got {np.shape(patches)}")
        k = self.manifest.dihedral_views
        if k > 1:
            patches = dihedral_views(patches, k)
            features = np.tile(np.asarray(features, np.float32), (k, 1))
        logit = self.session.run(["logit"], {"patches": patches, "features": features})[0].reshape(k, n)
        logit = logit.astype(np.float64).mean(axis=0)
        return (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)

    def score_defects(self, image: np.ndarray, class_mask: np.ndarray, defects: Sequence[Defect]) -> np.ndarray:
        """Scores for ``defects`` (all from one view; each needs its ``bbox_xyxy_px``)."""
        if not defects:
            return np.zeros(0, np.float32)
        return self.scores(*candidate_inputs(image, class_mask, defects, self.manifest, self.channels))

    def operating_point(self, spec_id: str | None = None) -> OperatingPoint:
        """The keep threshold and review band for parts of ``spec_id``: its own point in the
        manifest's ``spec_points`` if it has one, else the manifest's."""
        return self.manifest.spec_points.get(spec_id, self._point) if spec_id else self._point

    def review_band(self, review_below: float | None = None, spec_id: str | None = None) -> float | None:
        """The review band in use: ``review_below`` if given, else the manifest's (for ``spec_id``);
        None when there is none (unset, 0, or not above the keep threshold)."""
        point = self.operating_point(spec_id)
        band = point.review_below if review_below is None else review_below
        return band if band and band > point.keep_threshold else None

    def split(
        self, image: np.ndarray, class_mask: np.ndarray, defects: Sequence[Defect],
        review_below: float | None = None, spec_id: str | None = None, vouched: Sequence[bool] | None = None,
    ) -> tuple[list[Defect], list[Defect]]:
        """(kept, dismissed): the candidates scored at/above the manifest's threshold (for
        ``spec_id``), and the rest, each with its ``verifier_score``. Kept ones scored under
        ``review_below`` (default: the manifest's) get a ``review_reason``: the gate lets them send
        the part to REVIEW, not REJECT. ``vouched``: per candidate, whether something other than its
        look (e.g. the back-lit silhouette) shows it is real: scored, but kept and judged as measured."""
        keep_at = self.operating_point(spec_id).keep_threshold
        band = self.review_band(review_below, spec_id)
        kept: list[Defect] = []
        dismissed: list[Defect] = []
        scores = self.score_defects(image, class_mask, defects).tolist()
        for d, s, sure in zip(defects, scores, vouched or [False] * len(defects), strict=True):
            update: dict[str, object] = {"verifier_score": s}
            keep = sure or s >= keep_at
            if not keep:
                update["dismissed_because"] = f"look-alike verifier score {s:.3f} < {keep_at:.3f}"
            elif not sure and band is not None and s < band:
                update["review_reason"] = f"look-alike verifier unsure, score {s:.3f} < {band:.3f}"
            (kept if keep else dismissed).append(d.model_copy(update=update))
        return kept, dismissed


def bundled_verifier_path(lighting: str | None = None) -> Path:
    """The bundled verifier's file; ``lighting``: the one trained for a station that lights every view
    that way (``default-verifier-<lighting>.onnx``; :func:`bundled_verifier_lightings` lists them)."""
    from importlib import resources  # noqa: PLC0415

    name = "default-verifier.onnx" if lighting is None else f"default-verifier-{lighting}.onnx"
    return Path(str(resources.files("magspect.models") / "weights" / name))


def bundled_verifier_lightings() -> tuple[str, ...]:
    """The front lights that have a bundled verifier of their own (e.g. ``("darkfield",)``)."""
    weights = bundled_verifier_path().parent
    return tuple(sorted(p.name[len("default-verifier-"):-len(".onnx")]
                        for p in weights.glob("default-verifier-*.onnx")))


def resolve_verifier(given: str | Path) -> str | Path:
    """``given`` as a file: a light's name with a bundled verifier of its own (``"darkfield"``)
    names that file; anything else is taken as a path. Raises VerifierError for a light's name
    with none bundled."""
    from magspect.datasets._config import FRONT_LIGHTINGS  # noqa: PLC0415 - only when a name is given

    if isinstance(given, str) and given in FRONT_LIGHTINGS:
        if given not in bundled_verifier_lightings():
            have = ", ".join(bundled_verifier_lightings()) or "none"
            raise VerifierError(f"no bundled verifier for {given} light (bundled for: {have}); give a verifier file")
        return bundled_verifier_path(given)
    return given


__all__ = [
    "PATCH_CHANNELS",
    "check_patch_channels",
    "PATCH_PX",
    "VERIFIER_METADATA_KEY",
    "Verifier",
    "bundled_verifier_lightings",
    "resolve_verifier",
    "VerifierError",
    "VerifierManifest",
    "VerifierLighting",
    "OperatingPoint",
    "CandidateModelManifest",
    "DEFAULT_DIVISORS",
    "candidate_inputs",
    "candidate_session",
    "bundled_verifier_path",
    "candidate_patches",
    "candidate_features",
    "dihedral_views",
]
