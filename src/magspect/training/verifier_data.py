"""Training data for the look-alike verifier: the segmentation model's own candidates, labelled.

Synthetic parts (known truth, recorded nuisances) go through the whole Inspector with the model the
verifier is for (and no verifier). Every defect it *reports* becomes a sample: the verifier's input
(:func:`magspect.inspect.verifier.candidate_patches`, features), label 1 if the reported box
touches a truth defect (the rule ``evaluate`` counts false defects by), else 0 with its cause (the
nuisance under it, the outline, the clean surface), and whether the truth defect it found is, alone,
at or above a reject limit (the candidates the verifier must never drop). A real candidate also
records the class and subtype of the truth defect it overlaps most (what the coating-flaw subtype
classifier, :mod:`magspect.training.subtype`, learns from).

numpy/OpenCV/onnxruntime only; several (spawned) processes, one ONNX thread each. Chunks are written as
``.npz`` files as they finish, so an interrupted run keeps what it mined.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from magspect.datasets import generate_part, get_suite
from magspect.datasets._writer import spec_for_seed
from magspect.inspect.verifier import N_INPUT_CHANNELS, check_patch_channels

#: the recipe candidates are mined on by default (its train split's seeds): the bundled verifiers and
#: subtype classifier were mined on magsynth-v2's parts; ``suite="magsynth-v3"`` mines parts whose face
#: cracks start on the face (the CLI's default, ``MINE_SUITE_DEFAULT``, must match: a test checks)
MINE_SUITE = "magsynth-v2"

_STATE: dict[str, Any] = {}


def _init_worker(model: str) -> None:
    from magspect.inspect.inspector import Inspector

    _STATE["inspector"] = Inspector(model, threads=1, verifier=False)


def mine_part(inspector: Any, part: Any, channels: int = N_INPUT_CHANNELS) -> dict[str, list]:
    """The reported candidates of one synthetic part, with their labels (``channels``-channel
    patches: :func:`magspect.inspect.verifier.candidate_patches`)."""
    from magspect.inspect.evaluate import _rejectable
    from magspect.inspect.metrics import reported_defect_causes
    from magspect.inspect.verifier import candidate_features, candidate_patches

    truth = part.truth
    spec_id = truth["spec_id"]
    views = {v: rv.image for v, rv in part.views.items()}
    scale = {v: float(rv.truth["um_per_px"]) for v, rv in part.views.items()}
    backs = {v: rv.backlight for v, rv in part.views.items() if getattr(rv, "backlight", None) is not None}
    insp = inspector.inspect_detailed(views, spec=spec_id, part_id=str(truth.get("part_id")), um_per_px=scale,
                                      backlights=backs)
    out: dict[str, list] = {k: [] for k in ("patches", "features", "label", "rejectable", "cause", "klass", "view",
                                            "truth_class", "truth_subtype")}
    if insp.result.error is not None:
        return out
    for v, rv in part.views.items():
        art = insp.views.get(v)
        found = [d for d in insp.result.defects if d.view == v]
        if art is None or art.segmentation is None or not found:
            continue
        boxes = [d.bbox_xyxy_px for d in found]
        causes = reported_defect_causes(boxes, rv.class_mask, rv.truth.get("nuisances", []))
        patches = candidate_patches(art.image, art.segmentation.class_mask, boxes, channels=channels)
        feats = candidate_features(found)
        truth_defects = [d for d in rv.truth.get("defects", []) if d.get("instance_id") is not None]
        by_id = {int(t["instance_id"]): t for t in truth_defects}
        for i, (d, cause) in enumerate(zip(found, causes, strict=True)):
            rej, t_class, t_sub = False, "", ""
            if cause is None:  # which truth defects does it touch?
                x0, y0, x1, y1 = (int(round(c)) for c in d.bbox_xyxy_px)
                ids, counts = np.unique(rv.instance_mask[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2],
                                        return_counts=True)
                touched = [(int(n), int(k)) for k, n in zip(ids.tolist(), counts.tolist(), strict=True) if k in by_id]
                rej = any(_rejectable(spec_id, by_id[k]) for _, k in touched)
                if touched:  # the one it overlaps most
                    most = by_id[max(touched)[1]]
                    t_class, t_sub = str(most.get("class_name", "")), str(most.get("subtype") or "")
            out["patches"].append(patches[i].astype(np.float16))
            out["features"].append(feats[i])
            out["label"].append(cause is None)
            out["rejectable"].append(rej)
            out["cause"].append(cause or "")
            out["klass"].append(d.class_name)
            out["view"].append(v)
            out["truth_class"].append(t_class)
            out["truth_subtype"].append(t_sub)
    return out


def _mine_chunk(args: tuple[str, Sequence[int], str, str, str | None, str | None, int]) -> tuple[str, int, int]:
    suite_name, seeds, split, out_path, force_defect, light, channels = args
    suite = get_suite(suite_name)
    cfg = suite.config(split, light=light)
    if force_defect is not None:
        cfg = dataclasses.replace(cfg, force_defect=force_defect)
    rows: dict[str, list] = {}
    for seed in seeds:
        part = generate_part(spec_for_seed(seed, suite.spec_ids), seed, cfg)
        got = mine_part(_STATE["inspector"], part, channels)
        for k, vals in got.items():
            rows.setdefault(k, []).extend(vals)
        rows.setdefault("seed", []).extend([seed] * len(got["label"]))
    n = len(rows.get("label", []))
    arrays = {
        "patches": np.stack(rows["patches"]) if n else np.zeros((0, channels, 64, 64), np.float16),
        "features": np.stack(rows["features"]) if n else np.zeros((0, 4), np.float32),
        "label": np.asarray(rows.get("label", []), bool),
        "rejectable": np.asarray(rows.get("rejectable", []), bool),
        "cause": np.asarray(rows.get("cause", []), "U16"),
        "klass": np.asarray(rows.get("klass", []), "U16"),
        "view": np.asarray(rows.get("view", []), "U8"),
        "seed": np.asarray(rows.get("seed", []), np.int64),
        "truth_class": np.asarray(rows.get("truth_class", []), "U16"),
        "truth_subtype": np.asarray(rows.get("truth_subtype", []), "U16"),
    }
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **arrays)
    Path(tmp).replace(out_path)
    return out_path, len(seeds), n


def mine(
    model: str | Path,
    out_dir: str | Path,
    seeds: Sequence[int],
    *,
    suite: str = MINE_SUITE,
    split: str = "train",
    workers: int = 2,
    chunk: int = 25,
    force_defect: str | None = None,
    light: str | None = None,
    channels: int = N_INPUT_CHANNELS,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Mine candidates of parts ``seeds`` (drawn with ``suite``'s ``split`` recipe) into ``out_dir``.

    ``force_defect`` (e.g. ``"coating_flaw"``): every part gets at least one such defect (the
    generator's option), for data on one class. ``light`` (e.g. ``"darkfield"``): every view under
    that one front light (:meth:`~magspect.datasets.SynthSuite.config`), for a verifier of a station
    lit that way. ``channels``: the patches' layout, 4 (the bundled verifiers' and subtype
    classifier's) or 6 (with the part); chunks of one folder all have the same. Chunks already there
    (same seeds) are kept: a rerun resumes. ``progress(parts_done, candidates)``.
    """
    check_patch_channels(channels)
    out = Path(out_dir)
    seeds = list(seeds)
    get_suite(suite).config(split, light=light)  # an unknown light is refused before any work
    out.mkdir(parents=True, exist_ok=True)
    had = mined_channels(out)
    if had is not None and had != channels:
        raise ValueError(f"{out} holds {had}-channel candidates; mine {channels}-channel ones into another folder")
    (out / "mined.json").write_text(json.dumps(
        {"model": str(model), "suite": suite, "split": split, "seeds": [seeds[0], seeds[-1] + 1] if seeds else [],
         "force_defect": force_defect, "light": light, "channels": channels}, indent=2))
    jobs = []
    for k in range(0, len(seeds), chunk):
        s = seeds[k : k + chunk]
        path = out / f"chunk-{s[0]:08d}-{s[-1]:08d}.npz"
        if not path.exists():
            jobs.append((suite, s, split, str(path), force_defect, light, channels))
    done = len(seeds) - sum(len(j[1]) for j in jobs)
    total_c = 0
    if progress:
        progress(done, total_c)
    if workers <= 1 or len(jobs) <= 1:
        _init_worker(str(model))
        results = map(_mine_chunk, jobs)
        pool = None
    else:
        # spawn, not fork: a forked child of a process whose onnxruntime/torch thread pools are
        # running can deadlock on a lock some thread held at the fork
        pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(str(model),))
        results = pool.imap_unordered(_mine_chunk, jobs)
    try:
        for _, n_parts, n_c in results:
            done += n_parts
            total_c += n_c
            if progress:
                progress(done, total_c)
    finally:
        if pool is not None:  # every chunk is done (or the run was interrupted): stop the workers
            pool.terminate()
            pool.join()
    return out


def mined_channels(folder: str | Path) -> int | None:
    """The patch channels of the chunks under ``folder`` (None when it has none)."""
    first = next(iter(sorted(Path(folder).glob("chunk-*.npz"))), None)
    if first is None:
        return None
    with np.load(first) as z:
        return int(z["patches"].shape[1])


def load_mined(dirs: str | Path | Sequence[str | Path]) -> dict[str, np.ndarray]:
    """Every chunk under ``dirs`` concatenated (in file-name order, so the same on every run).
    Raises ValueError when the folders' patches differ in channels (mined with and without the part)."""
    paths = []
    for d in [dirs] if isinstance(dirs, str | Path) else dirs:
        paths += sorted(Path(d).glob("chunk-*.npz"))
    if not paths:
        raise FileNotFoundError(f"no mined chunks (chunk-*.npz) under {dirs}")
    parts = [dict(np.load(p)) for p in paths]
    by_channels: dict[int, Path] = {}
    for path, p in zip(paths, parts, strict=True):
        by_channels.setdefault(int(p["patches"].shape[1]), path.parent)
    if len(by_channels) > 1:
        found = ", ".join(f"{c} in {d}" for c, d in sorted(by_channels.items()))
        raise ValueError(f"mined candidates with different patch channels ({found}): train on one layout; "
                         "mine the others again with the same --patch-channels")
    keys = [k for k in parts[0] if all(k in p for p in parts)]  # older chunks lack the truth subtype
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}


__all__ = ["load_mined", "mine", "mine_part", "mined_channels"]
