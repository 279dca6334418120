"""``magspect train-verifier`` / ``train-subtypes``: mine the model's candidates on synthetic parts,
train the look-alike verifier or the coating-flaw subtype classifier on them, export it (needs the
``train`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, get_args

import typer

from magspect.cli._common import console, fail

if TYPE_CHECKING:
    from magspect.inspect.verifier import VerifierManifest


def register(app: typer.Typer) -> None:
    app.command("train-verifier")(train_verifier_cmd)
    app.command("tune-verifier")(tune_verifier_cmd)
    app.command("train-subtypes")(train_subtypes_cmd)
    app.command("tune-subtypes")(tune_subtypes_cmd)


def _torch():  # noqa: ANN202
    try:
        import torch
    except ImportError:
        fail("training needs PyTorch: pip install 'magspect[train]'")
    return torch


def _model_shas(paths: list[Path] | None) -> tuple[str, ...]:
    """The sha256 of each segmentation model in ``paths`` (each checked to load: ModelError if not)."""
    from magspect.inspect.backend import Segmenter

    return tuple(Segmenter(p, warmup=False).sha256 for p in paths or ())


def _check_tune_args(src: Path, out: Path, what: str, changes: bool, options: str) -> None:
    """The tuners' refusals: a missing input, writing over it, nothing to change, no onnx package."""
    if not src.is_file():
        fail(f"{what} not found: {src}")
    if out.resolve() == src.resolve():
        fail(f"write the tuned {what} to a new path (--out), not over its input")
    if not changes:
        fail(f"nothing to change: give {options}")
    try:
        import onnx  # noqa: F401
    except ImportError:
        fail("writing ONNX metadata needs the onnx package: pip install 'magspect[train]'")


def _of_seeds(data: dict, seeds: range) -> dict:
    """The mined candidates of the parts ``seeds`` (a mined folder may hold more)."""
    keep = (data["seed"] >= seeds.start) & (data["seed"] < seeds.stop)
    return {k: v[keep] for k, v in data.items()}


def _with_extra(own: dict, extra: dict, held_out: tuple[int, int]) -> tuple[dict, dict]:
    """``own`` candidates plus ``extra`` ones (other runs' mined folders, any seeds) for training only:
    the extra candidates on the held-out parts (seeds ``held_out``) are left out, so validation stays
    this model's own candidates on parts no training sample came from. Returns the data and counts."""
    import numpy as np

    on_held = (extra["seed"] >= held_out[0]) & (extra["seed"] < held_out[1])
    keys = [k for k in own if k in extra]  # older chunks lack the truth subtype
    data = {k: np.concatenate([own[k], extra[k][~on_held]]) for k in keys}
    counts = {"n_candidates": int((~on_held).sum()), "n_real": int(extra["label"][~on_held].sum()),
              "n_parts": int(len(np.unique(extra["seed"][~on_held]))), "n_left_out": int(on_held.sum())}
    return data, counts


#: options train-verifier and train-subtypes share
WorkersOpt = Annotated[int, typer.Option(min=1, help="Mining processes.")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="no progress bar")]
PatchChannelsOpt = Annotated[
    int, typer.Option(min=4, max=6, help="Candidate patch channels: 4, the bundled verifiers' layout; 6 adds where "
                      "the part is (a line running on past the outline lies on top of the part: lint, not a "
                      "crack; not yet better for parts, BENCHMARKS.md).")]
#: whose train recipe draws the mined parts; the default is what the bundled verifiers and subtype classifier
#: were mined on (magspect.training.verifier_data.MINE_SUITE, imported there only when mining)
MINE_SUITE_DEFAULT = "magsynth-v2"
SuiteOpt = Annotated[str, typer.Option(help="Whose train recipe draws the parts: magsynth-v2 (what the bundled "
                                       "verifiers and subtype classifier were mined on) or magsynth-v3 (face "
                                       "cracks on the face).")]


def _mine_for(model: Path | None, also_for: list[Path] | None, out_dir: Path, seeds: range, workers: int,
              no_progress: bool, force_defect: str | None = None,
              light: str | None = None, channels: int = 4,
              suite: str = MINE_SUITE_DEFAULT) -> tuple[Path, str, tuple[str, ...], Path]:
    """Mine (or resume mining) ``model``'s candidates on the parts ``seeds`` of ``suite``'s train recipe
    (every view under front light ``light``, or the suite's draw; ``channels``-channel patches) into
    ``out_dir/mined``: (model path, its sha256, the sha256s of ``also_for``, the mined folder)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from magspect.datasets import SUITES
    from magspect.inspect.backend import ModelError, Segmenter, bundled_model_path
    from magspect.inspect.verifier import check_patch_channels
    from magspect.training.verifier_data import mine, mined_channels

    if suite not in SUITES:
        fail(f"--suite {suite!r}: unknown; known: {', '.join(SUITES)}")

    try:
        check_patch_channels(channels)
    except ValueError as exc:
        fail(f"--patch-channels: {exc}")
    model_path = model if model is not None else bundled_model_path()
    try:
        sha = Segmenter(model_path, warmup=False).sha256
        also = _model_shas(also_for)
    except ModelError as exc:
        fail(str(exc))
    out_dir.mkdir(parents=True, exist_ok=True)
    mined = out_dir / "mined"
    if (mined / "mined.json").is_file():
        before = json.loads((mined / "mined.json").read_text())
        if Path(before["model"]).name != model_path.name:
            fail(f"{mined} holds candidates of {before['model']}; use another --out for {model_path}")
        if (had_suite := before.get("suite", "magsynth-v2")) != suite:
            fail(f"{mined} holds candidates of {had_suite} parts, not {suite}'s: use another --out")
        if before.get("force_defect") != force_defect:
            fail(f"{mined} holds candidates mined with force_defect={before.get('force_defect')!r}, not "
                 f"{force_defect!r}: use another --out")
        if before.get("light") != light:
            fail(f"{mined} holds candidates mined under {before.get('light') or 'the suite draw of lights'}, not "
                 f"{light or 'the suite draw of lights'}: use another --out")
    if (had := mined_channels(mined)) not in (None, channels):  # the chunks themselves say
        fail(f"{mined} holds {had}-channel candidates, not {channels}: pass --patch-channels {had} or use "
             "another --out")
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=no_progress) as bar:
        task = bar.add_task("mining candidates (parts)", total=len(seeds))

        def progress(done: int, n_candidates: int) -> None:
            bar.update(task, completed=done, description=f"mining: {n_candidates} candidates so far")

        try:
            mine(model_path, mined, seeds, suite=suite, workers=workers, force_defect=force_defect, light=light,
                 channels=channels, progress=progress)
        except ValueError as exc:  # an unknown light (the layout is checked above)
            fail(f"--lighting: {exc}")
    return model_path, sha, also, mined


def write_tuned(
    verifier: Path,
    out: Path,
    *,
    keep_threshold: float | None = None,
    review_below: float | None | str = "keep",
    also_for: tuple[str, ...] = (),
    dihedral_views: int | None = None,
    spec_points: dict[str, tuple[float, float | None]] | None = None,
    lighting: str | None = None,
) -> VerifierManifest:
    """Write ``out``: ``verifier`` with a new operating point, weights unchanged: ``keep_threshold``
    (None: unchanged), ``review_below`` (``"keep"``: unchanged; None: no band), ``also_for``: sha256
    of more segmentation models it was checked with (through the whole pipeline, on validation
    parts), ``dihedral_views`` (test-time flips; None: unchanged), ``spec_points``: spec id ->
    (keep threshold, review band or None), that spec's own operating point, added to (or replacing
    that spec's in) the manifest's, ``lighting``: the front light the point was chosen under
    (``"suite"``: the suite's draw of lights; None: unchanged). Each change is recorded in the
    manifest's ``training["tuned"]``; its manifest JSON is written beside it and its line in a
    ``SHA256SUMS`` beside it updated. Returns the new manifest.
    Raises ValueError for a review band at or under the keep threshold."""
    from magspect.inspect.verifier import VERIFIER_METADATA_KEY, OperatingPoint, Verifier, VerifierLighting

    vm = Verifier(verifier).manifest
    keep = vm.keep_threshold if keep_threshold is None else float(keep_threshold)
    band = vm.review_below if review_below == "keep" else review_below
    _check_band(keep, band, "the verifier's")
    update: dict[str, object] = {"keep_threshold": keep, "review_below": band}
    if dihedral_views is not None:
        update["dihedral_views"] = int(dihedral_views)
    if lighting is not None:
        *lights, last = get_args(VerifierLighting)  # the manifest's own values, worded for the CLI
        if lighting not in (*lights, last):
            raise ValueError(f"--lighting must be one of {', '.join(lights)} or {last}, got {lighting!r}")
        update["lighting"] = lighting
    if spec_points:
        for spec_id, (k, b) in spec_points.items():
            _check_band(k, b, "its", f"spec point {spec_id}: ")
        update["spec_points"] = {**vm.spec_points, **{k: OperatingPoint(keep_threshold=t, review_below=b)
                                                       for k, (t, b) in spec_points.items()}}
    return _write_changed(verifier, out, vm, VERIFIER_METADATA_KEY, also_for, update)


def _check_band(keep: float, band: float | None, whose: str, where: str = "") -> None:
    """Raises ValueError for a review band at or under its keep threshold."""
    if band is not None and band <= keep:
        raise ValueError(f"{where}a review band must be above {whose} keep threshold {keep:.4g} "
                         f"(candidates under it are dismissed), got {band:g}")


def _band_text(band: float | None) -> str:
    return f"review band under {band:g}" if band else "no review band"


def _write_changed(src: Path, out: Path, m, key: str, also_for: tuple[str, ...], update: dict):  # noqa: ANN001, ANN202
    """``src`` written to ``out`` with its manifest ``m`` updated (``update``, plus the segmentation
    models ``also_for`` it serves), the change recorded in ``training["tuned"]``; weights unchanged."""
    from datetime import UTC, datetime

    from magspect.models.onnx_meta import copy_with_metadata

    also = tuple(dict.fromkeys([*m.also_for_sha256, *(s for s in also_for if s != m.segmenter_sha256)]))
    added = [s for s in also if s not in m.also_for_sha256]
    change = {"at": datetime.now(UTC).isoformat(timespec="seconds"),
              **{k: [getattr(m, k), v] for k, v in update.items()}, "also_for_added": added}
    training = {**m.training, "tuned": [*m.training.get("tuned", []), change]}
    new = m.model_copy(update={**update, "also_for_sha256": also, "training": training})
    new = type(new).model_validate(new.model_dump())
    copy_with_metadata(src, out, key, new.to_json())
    return new


def tune_verifier_cmd(
    verifier: Annotated[Path, typer.Argument(help="The verifier (ONNX export) to tune.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the tuned copy (not VERIFIER itself).")],
    keep_threshold: Annotated[
        float | None, typer.Option(min=0.0, max=0.999, help="Candidates scored under this are dismissed "
                                   "(default: unchanged).")] = None,
    review_below: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Kept candidates scored under this send their part "
                                   "to REVIEW, not REJECT; 0: no band (default: unchanged).")] = None,
    also_for: Annotated[
        list[Path] | None,
        typer.Option(help="A segmentation model it was checked with (repeatable): the runtime then uses it "
                     "with that model too."),
    ] = None,
    dihedral_views: Annotated[
        int | None,
        typer.Option(help="Score each candidate as the mean over 1, 2, 4 or 8 flips/rotations of its patches "
                     "(test-time augmentation; costs that many times the verifier's time). Scores change: "
                     "choose the thresholds with it (default: unchanged)."),
    ] = None,
    spec_point: Annotated[
        list[str] | None,
        typer.Option(help="SPEC=KEEP or SPEC=KEEP/REVIEW: that spec's own keep threshold and review band "
                     "(repeatable; other specs keep the verifier's). Sweep it first: "
                     "benchmarks/bench_verifier_thresholds.py --spec SPEC --split val."),
    ] = None,
    lighting: Annotated[
        str | None,
        typer.Option(help="The front light (coaxial, dome, darkfield) every view was lit with where this operating "
                     "point was chosen (bench_verifier_thresholds.py --lighting), or suite (the suite's draw of "
                     "lights): recorded in the manifest, and results name the verifier by it "
                     "(verifier_cnn-darkfield). Default: unchanged."),
    ] = None,
) -> None:
    """Set a look-alike verifier's operating point (keep threshold, review band, test-time flips; for every spec
    or per spec) or the models it serves, in a copy of it (weights unchanged). Choose them on validation parts
    first: benchmarks/bench_verifier_thresholds.py --split val --review-below ..."""
    from magspect.inspect.backend import ModelError
    from magspect.inspect.verifier import VerifierError

    _check_tune_args(verifier, out, "verifier", keep_threshold is not None or review_below is not None
                     or bool(also_for) or dihedral_views is not None or bool(spec_point) or lighting is not None,
                     "--keep-threshold, --review-below, --dihedral-views, --spec-point, --lighting or --also-for")
    if dihedral_views is not None and dihedral_views not in (1, 2, 4, 8):
        fail(f"--dihedral-views must be 1, 2, 4 or 8, got {dihedral_views}")
    points = _spec_points(spec_point or [])
    try:
        also = _model_shas(also_for)
        m = write_tuned(verifier, out, keep_threshold=keep_threshold,
                        review_below="keep" if review_below is None else (review_below or None), also_for=also,
                        dihedral_views=dihedral_views, spec_points=points, lighting=lighting)
    except (ModelError, VerifierError, ValueError) as exc:
        fail(str(exc))
    views = f", each scored over {m.dihedral_views} flips" if m.dihedral_views > 1 else ""
    views += f", chosen under {m.lighting} light" if m.lighting not in (None, "suite") else ""
    own = "; ".join(f"{k}: keeps >= {p.keep_threshold:g}, {_band_text(p.review_below)}"
                    for k, p in m.spec_points.items())
    console.print(f"wrote {out}: keeps candidates scored >= {m.keep_threshold:g}, {_band_text(m.review_below)}{views}"
                  + (f" (own points: {own})" if own else "")
                  + f", serves {1 + len(m.also_for_sha256)} model(s); weights unchanged")


def _spec_points(values: list[str]) -> dict[str, tuple[float, float | None]]:
    """``--spec-point SPEC=KEEP[/REVIEW]`` values, each spec known and each number a probability."""
    from magspect.specs import UnknownSpecError, get_spec

    out: dict[str, tuple[float, float | None]] = {}
    for value in values:
        spec_id, eq, rest = value.partition("=")
        keep_s, _, band_s = rest.partition("/")
        try:
            get_spec(spec_id)
            keep = float(keep_s)
            band = float(band_s) if band_s else None
        except UnknownSpecError as exc:
            fail(f"--spec-point {value!r}: {exc}")
        except ValueError:
            fail(f"--spec-point {value!r}: expected SPEC=KEEP or SPEC=KEEP/REVIEW, e.g. def-disc-d10-t3-nicuni=0.3/0.5")
        if not eq or not 0.0 <= keep < 1.0 or (band is not None and not 0.0 < band <= 1.0):
            fail(f"--spec-point {value!r}: expected SPEC=KEEP or SPEC=KEEP/REVIEW with 0 <= KEEP < 1 and "
                 "0 < REVIEW <= 1")
        out[spec_id] = (keep, band)
    return out


def train_verifier_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: mined candidates, report, verifier.onnx.")],
    model: Annotated[Path | None, typer.Option(help="The segmentation model it verifies (default: bundled).")] = None,
    parts: Annotated[int, typer.Option(min=20, help="Synthetic parts to mine candidates from.")] = 5000,
    seed_start: Annotated[int, typer.Option(help="First part seed (the --suite's train recipe).")] = 300_000,
    suite: SuiteOpt = MINE_SUITE_DEFAULT,
    val_parts: Annotated[int, typer.Option(min=10, help="The last N parts: held out, choose the threshold.")] = 500,
    epochs: Annotated[int, typer.Option(min=1, help="The bundled verifier's: 36 (33 minutes on 2 CPU cores).")] = 36,
    workers: WorkersOpt = 2,
    min_recall_rejectable: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Keep at least this share of held-out real candidates that "
                            "found a defect at/above a reject limit.")] = 0.995,
    min_recall: Annotated[float, typer.Option(min=0.5, max=1.0, help="... and of all real ones.")] = 0.98,
    also_for: Annotated[
        list[Path] | None,
        typer.Option(help="Other exports of the same checkpoint (e.g. its INT8 model) the verifier may serve; "
                     "repeatable. Check them with `magspect evaluate --model ... --verifier ...`."),
    ] = None,
    review_below: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Record a review band: kept candidates scored under this send their "
                     "part to REVIEW, not REJECT (sweep it first: benchmarks/bench_verifier_thresholds.py "
                     "--review-below)."),
    ] = None,
    extra_mined: Annotated[
        list[Path] | None,
        typer.Option(help="Another run's mined/ folder (candidates of this or another segmentation model, on "
                     "any seeds), added to the training data; repeatable. Its candidates on this run's held-out "
                     "parts are left out: validation stays this model's own."),
    ] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Fine-tune this verifier (ONNX export, e.g. the bundled one) instead of training from "
                     "scratch: it keeps what it learnt from its own model's false calls and learns this model's."),
    ] = None,
    lr: Annotated[float | None, typer.Option(min=1e-6, max=1.0, help="Peak learning rate (default 2e-3; 3e-4 "
                                             "with --init-from).")] = None,
    lighting: Annotated[
        str | None,
        typer.Option(help="Mine parts with every view under this front light (coaxial, dome or darkfield), for a "
                     "station lit that way; judge it with `magspect evaluate --lighting` (default: the suite's "
                     "draw of lights)."),
    ] = None,
    patch_channels: PatchChannelsOpt = 4,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train the look-alike verifier for a segmentation model; resumes mining if OUT has chunks."""
    torch = _torch()
    from magspect.training.plot import write_curves
    from magspect.training.verifier import (
        VerifierTrainConfig,
        build_manifest,
        export_verifier,
        net_from_onnx,
        save_report,
        split_by_seed,
        train_verifier,
    )
    from magspect.training.verifier_data import load_mined, mined_channels

    if parts <= val_parts:
        fail(f"--parts {parts} must be more than --val-parts {val_parts}")
    init = None
    if init_from is not None:
        if not init_from.is_file():
            fail(f"--init-from {init_from}: no such file")
        try:
            init = net_from_onnx(init_from)
        except ValueError as exc:
            fail(str(exc))
        if init.n_out != 1:
            fail(f"--init-from {init_from}: {init.n_out} outputs; a verifier has one (a subtype classifier?)")
    for extra in extra_mined or ():
        if not sorted(extra.glob("chunk-*.npz")):
            fail(f"--extra-mined {extra}: no mined chunks (chunk-*.npz) there")
        if (had := mined_channels(extra)) != patch_channels:
            fail(f"--extra-mined {extra}: {had}-channel candidates; this run mines {patch_channels}-channel ones "
                 f"(--patch-channels {had} to train on that layout)")
    seeds = range(seed_start, seed_start + parts)
    model_path, sha, also, mined = _mine_for(model, also_for, out_dir, seeds, workers, no_progress, light=lighting,
                                             channels=patch_channels, suite=suite)
    held_out = (seeds.stop - val_parts, seeds.stop)
    data = _of_seeds(load_mined(mined), seeds)
    n_own = len(data["label"])
    n_real = int(data["label"].sum())
    console.print(f"{n_own} candidates from {parts} parts: {n_real} real defects, {n_own - n_real} look-alikes")
    extra_counts = {}
    if extra_mined:
        data, extra_counts = _with_extra(data, load_mined(extra_mined), held_out)  # layouts checked above
        console.print(f"+ {extra_counts['n_candidates']} candidates of other runs from "
                      f"{extra_counts['n_parts']} parts ({extra_counts['n_real']} real), for training only; "
                      f"{extra_counts['n_left_out']} of theirs on the held-out parts left out")
        n_real = int(data["label"].sum())
    cfg = VerifierTrainConfig(epochs=epochs, val_parts=val_parts, min_recall_rejectable=min_recall_rejectable,
                              min_recall=min_recall, lr=lr or (3e-4 if init is not None else 2e-3),
                              freeze_bn=init is not None, val_seeds=held_out)
    try:
        net, report = train_verifier(data, cfg, log=console.print, init=init)
    except ValueError as exc:
        fail(str(exc))
    save_report(report, out_dir)
    write_curves(out_dir / "curves.png",
                 [{"step": e["epoch"], "loss": e["train_loss"]} for e in report.epochs],
                 [{"step": e["epoch"], "val_auroc": e["val_auroc"]} for e in report.epochs], ["val_auroc"])
    _, va = split_by_seed(data, val_parts, held_out)
    training = {
        "command": (f"magspect train-verifier --out {out_dir} --model {model_path.name} --parts {parts} "
                    f"--seed-start {seed_start} --suite {suite} --val-parts {val_parts} --epochs {epochs}"),
        "suite_recipe": f"{suite}/train", "seeds": [seed_start, seed_start + parts],
        "val_seeds": [seed_start + parts - val_parts, seed_start + parts],
        "n_candidates": int(len(data["label"])), "n_real": n_real,
    }
    if extra_mined:
        training["command"] += "".join(f" --extra-mined {d}" for d in extra_mined)
        training["extra_mined"] = [str(d) for d in extra_mined]
        training["extra"] = extra_counts
    if init_from is not None:
        from magspect.inspect.backend import sha256_file

        training["command"] += f" --init-from {init_from}"
        training["init_from"] = {"file": init_from.name, "sha256": sha256_file(init_from)}
    if lr is not None:
        training["command"] += f" --lr {lr:g}"
    if lighting is not None:
        training["command"] += f" --lighting {lighting}"
    if patch_channels != 4:
        training["command"] += f" --patch-channels {patch_channels}"
    training["lr"] = cfg.lr
    training["patch_channels"] = patch_channels
    training["lighting"] = lighting or "suite"
    manifest = build_manifest(report, sha, training, also_for=also, review_below=review_below)
    state = {"state_dict": net.state_dict(), "widths": net.widths, "strides": net.strides,
             "in_channels": net.in_channels, "manifest": manifest.model_dump()}
    torch.save(state, out_dir / "verifier.pt")
    path = export_verifier(net, out_dir / "verifier.onnx", manifest,
                           check=(data["patches"][va[:256]], data["features"][va[:256]]))
    (out_dir / "verifier.manifest.json").write_text(manifest.to_json())
    console.print(
        f"held-out {report.n_val} candidates ({val_parts} parts): threshold {report.keep_threshold:.3f} keeps "
        f"{report.kept_real:.1%} of real defects ({report.kept_real_rejectable:.1%} of those at/above a reject "
        f"limit) and dismisses {report.dismissed_false:.1%} of look-alikes; AUROC {report.val_auroc:.4f}"
    )
    for cause, (gone, n) in sorted(report.dismissed_false_by_cause.items(), key=lambda kv: -kv[1][1]):
        console.print(f"  {cause:12s} {gone:5d} of {n:5d} dismissed")
    console.print(f"verifier: {path} (curves: {out_dir / 'curves.png'}); use it: magspect evaluate --suite "
                  f"{suite} --n 150 --verifier {path}")


def train_subtypes_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder: mined candidates, report, subtypes.onnx.")],
    model: Annotated[Path | None, typer.Option(help="The segmentation model whose candidates it classifies "
                                               "(default: bundled).")] = None,
    parts: Annotated[int, typer.Option(min=20, help="Synthetic parts to mine, each with a coating flaw.")] = 4000,
    seed_start: Annotated[int, typer.Option(help="First part seed (the --suite's train recipe).")] = 310_000,
    suite: SuiteOpt = MINE_SUITE_DEFAULT,
    val_parts: Annotated[int, typer.Option(min=10, help="The last N parts: held out, choose the operating "
                                           "point.")] = 400,
    epochs: Annotated[int, typer.Option(min=1, help="The bundled classifier's: 100 (21 minutes on 2 CPU "
                                        "cores).")] = 100,
    workers: WorkersOpt = 2,
    strict_coverage: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="Keep the true subtype plausible for at least this share of "
                            "held-out flaws of a subtype no spec allows (blister, peel, rust, scratch, or not a "
                            "coating flaw).")] = 0.995,
    coverage: Annotated[float, typer.Option(min=0.5, max=1.0, help="... and of all held-out flaws.")] = 0.98,
    also_for: Annotated[
        list[Path] | None,
        typer.Option(help="Other exports of the same checkpoint (e.g. its INT8 model) it may serve; repeatable."),
    ] = None,
    patch_channels: PatchChannelsOpt = 4,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train the coating-flaw subtype classifier for a segmentation model; resumes mining if OUT has chunks."""
    torch = _torch()
    from magspect.inspect.subtype import SUBTYPE_LABELS
    from magspect.training.plot import write_curves
    from magspect.training.subtype import (
        SubtypeTrainConfig,
        build_subtypes_manifest,
        export_subtypes,
        subtype_samples,
        train_subtypes,
    )
    from magspect.training.verifier import save_report, split_by_seed
    from magspect.training.verifier_data import load_mined

    if parts <= val_parts:
        fail(f"--parts {parts} must be more than --val-parts {val_parts}")
    seeds = range(seed_start, seed_start + parts)
    model_path, sha, also, mined = _mine_for(model, also_for, out_dir, seeds, workers, no_progress,
                                             force_defect="coating_flaw", channels=patch_channels, suite=suite)
    data = _of_seeds(load_mined(mined), seeds)
    try:
        rows, y = subtype_samples(data)
        counts = {lab: int((y == k).sum()) for k, lab in enumerate(SUBTYPE_LABELS)}
        console.print(f"{len(rows)} reported coating flaws on a truth defect from {parts} parts: "
                      + ", ".join(f"{k} {v}" for k, v in counts.items()))
        cfg = SubtypeTrainConfig(epochs=epochs, val_parts=val_parts, strict_coverage=strict_coverage,
                                 coverage=coverage)
        net, report = train_subtypes(data, cfg, log=console.print)
    except ValueError as exc:
        fail(str(exc))
    save_report(report, out_dir)
    write_curves(out_dir / "curves.png",
                 [{"step": e["epoch"], "loss": e["train_loss"]} for e in report.epochs],
                 [{"step": e["epoch"], "val_nll": -e["val_score"]} for e in report.epochs], ["val_nll"])
    training = {
        "command": (f"magspect train-subtypes --out {out_dir} --model {model_path.name} --parts {parts} "
                    f"--seed-start {seed_start} --suite {suite} --val-parts {val_parts} --epochs {epochs}"),
        "suite_recipe": f"{suite}/train, a coating flaw forced on every part", "seeds": [seeds.start, seeds.stop],
        "val_seeds": [seeds.stop - val_parts, seeds.stop], "n_flaws": int(len(rows)), "counts": counts,
        "patch_channels": patch_channels,
    }
    if patch_channels != 4:
        training["command"] += f" --patch-channels {patch_channels}"
    manifest = build_subtypes_manifest(report, sha, training, also_for=also)
    torch.save({"state_dict": net.state_dict(), "widths": net.widths, "strides": net.strides, "n_out": net.n_out,
                "in_channels": net.in_channels, "manifest": manifest.model_dump()}, out_dir / "subtypes.pt")
    _, va = split_by_seed({"seed": data["seed"][rows]}, val_parts)
    check = (data["patches"][rows[va[:256]]], data["features"][rows[va[:256]]])
    path = export_subtypes(net, out_dir / "subtypes.onnx", manifest, check=check)
    (out_dir / "subtypes.manifest.json").write_text(manifest.to_json())
    console.print(
        f"held-out {report.n_val} flaws ({val_parts} parts): argmax right {report.accuracy:.1%}; plausible at "
        f"p >= {report.plausible_at:.4f}: the true subtype plausible for {report.truth_plausible:.1%} "
        f"({report.truth_plausible_strict:.1%} of strict ones); relieved of the strictest reading: "
        f"{report.relieved_lenient:.1%} of {'/'.join(report.lenient)}, {report.relieved_strict:.2%} of strict ones"
    )
    for lab, r in report.per_label.items():
        console.print(f"  {lab:8s} n {r['n']:5d}  argmax right {r['accuracy']:.1%}  truth plausible "
                      f"{r['truth_plausible']:.1%}  relieved {r['relieved']:.1%}  set size {r['mean_set_size']:.2f}")
    console.print(f"subtype classifier: {path} (curves: {out_dir / 'curves.png'}); use it: magspect evaluate "
                  f"--suite {suite} --n 150 --subtypes {path}")


def tune_subtypes_cmd(
    classifier: Annotated[Path, typer.Argument(help="The subtype classifier (ONNX export) to tune.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the tuned copy (not CLASSIFIER itself).")],
    plausible_at: Annotated[
        float | None, typer.Option(min=1e-6, max=0.5, help="A subtype with at least this probability is one the "
                                   "flaw could be (lower: stricter; default: unchanged).")] = None,
    also_for: Annotated[
        list[Path] | None,
        typer.Option(help="A segmentation model it was checked with (repeatable): the runtime then uses it "
                     "with that model too."),
    ] = None,
) -> None:
    """Set a coating-flaw subtype classifier's operating point or the models it serves, in a copy of it
    (weights unchanged). Check a new point on validation parts first: magspect evaluate --split val --subtypes ..."""
    from magspect.inspect.backend import ModelError
    from magspect.inspect.subtype import SUBTYPES_METADATA_KEY, SubtypeClassifier, SubtypeError

    _check_tune_args(classifier, out, "subtype classifier", plausible_at is not None or bool(also_for),
                     "--plausible-at or --also-for")
    try:
        also = _model_shas(also_for)
        m = SubtypeClassifier(classifier).manifest
        m = _write_changed(classifier, out, m, SUBTYPES_METADATA_KEY, also,
                           {"plausible_at": m.plausible_at if plausible_at is None else float(plausible_at)})
    except (ModelError, SubtypeError, ValueError) as exc:
        fail(str(exc))
    console.print(f"wrote {out}: subtypes plausible at p >= {m.plausible_at:g}, serves "
                  f"{1 + len(m.also_for_sha256)} model(s); weights unchanged")
