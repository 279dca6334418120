"""``magspect models list | show | register | compare A B | promote V | rollback``: the model registry.

The registry folder is ``--registry PATH``, else ``$MAGSPECT_MODELS``, ``$MAGSPECT_HOME/models`` or
``./magspect-models``. The station and the service load its promoted model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from magspect.cli._common import console, fail

models_app = typer.Typer(help="Model registry: versions, metrics, lineage, champion/challenger.", no_args_is_help=True)
RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="registry folder (default: $MAGSPECT_MODELS, "
                                                  "$MAGSPECT_HOME/models or ./magspect-models)")]


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


def _reg(path: Path | None):  # noqa: ANN202
    from magspect.models.registry import ModelRegistry

    return ModelRegistry(path)


def _get(reg, ref: str):  # noqa: ANN001, ANN202
    from magspect.models.registry import RegistryError

    try:
        return reg.get(ref)
    except RegistryError as exc:
        fail(str(exc))


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


@models_app.command("list")
def list_cmd(registry: RegistryOpt = None, json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every version, newest last; * marks the promoted one."""
    from rich.table import Table

    reg = _reg(registry)
    versions = reg.list()
    promoted = reg.promoted()
    pv = promoted.version if promoted else None
    if json_out:
        typer.echo(json.dumps([{"version": m.version, "promoted": m.version == pv, **m.info,
                                "suites": sorted(m.metrics)} for m in versions], default=str))
        return
    if not versions:
        console.print(f"registry {reg.root} is empty")
        return
    table = Table(title=f"models in {reg.root}")
    for col in ("", "version", "created", "model", "parent", "suites measured", "notes"):
        table.add_column(col)
    for m in versions:
        table.add_row("*" if m.version == pv else "", m.version, str(m.info.get("created_at", "")),
                      str(m.info.get("model_name", "")), str(m.parent or "—"), ", ".join(sorted(m.metrics)) or "—",
                      str(m.info.get("notes", "")))
    console.print(table)


@models_app.command("show")
def show_cmd(version: Annotated[str, typer.Argument(help="v0003, 3, latest or promoted")],
             registry: RegistryOpt = None) -> None:
    """Info, lineage and metrics of one version (JSON)."""
    reg = _reg(registry)
    m = _get(reg, version)
    promoted = reg.promoted()
    typer.echo(json.dumps({"version": m.version, "promoted": bool(promoted and promoted.version == m.version),
                           "onnx": str(m.onnx_path), "info": m.info, "lineage": m.lineage, "metrics": m.metrics},
                          indent=2, default=str))


@models_app.command("register")
def register_cmd(
    onnx: Annotated[Path, typer.Argument(help="an exported model (.onnx with its manifest)")],
    registry: RegistryOpt = None,
    notes: Annotated[str, typer.Option(help="free text")] = "",
    promote: Annotated[bool, typer.Option("--promote", help="promote it (gated as `models promote`)")] = False,
) -> None:
    """Add an exported model (e.g. the bundled default) as a new version."""
    from magspect.models.registry import RegistryError

    reg = _reg(registry)
    try:
        m = reg.register(onnx, notes=notes, lineage={"parent": None, "source": str(onnx)})
    except (RegistryError, ValueError) as exc:
        fail(str(exc))
    console.print(f"registered {onnx} as {m.version} in {reg.root}")
    if promote:
        _promote(reg, m.version, None, False, "")


def _promote(reg, version: str, margin: float | None, force: bool, reason: str) -> None:  # noqa: ANN001
    from magspect.models.registry import RegistryError

    try:
        decision = reg.promote(version, max_escape_rate_increase=margin, force=force, reason=reason)
    except RegistryError as exc:
        fail(str(exc), code=1)
    for r in decision.reasons:
        console.print(f"  {r}", highlight=False)
    console.print(f"promoted {reg.resolve(version)}{' (forced)' if force and not decision.allowed else ''}")


@models_app.command("promote")
def promote_cmd(
    version: Annotated[str, typer.Argument(help="the challenger: v0003, 3 or latest")],
    registry: RegistryOpt = None,
    margin: Annotated[float | None, typer.Option(help="allowed escape-rate increase, absolute (0.01 = 1 point); "
                                                 "default: the registry's policy")] = None,
    force: Annotated[bool, typer.Option("--force", help="promote even when the gate refuses (recorded)")] = False,
    reason: Annotated[str, typer.Option(help="note kept in the promotion history")] = "",
) -> None:
    """Make VERSION the promoted model, unless its escape rate is worse than the champion's."""
    _promote(_reg(registry), version, margin, force, reason)


@models_app.command("rollback")
def rollback_cmd(registry: RegistryOpt = None) -> None:
    """Promote again the model that was promoted before the current one."""
    from magspect.models.registry import RegistryError

    reg = _reg(registry)
    try:
        m = reg.rollback()
    except RegistryError as exc:
        fail(str(exc), code=1)
    console.print(f"rolled back: {m.version} is promoted again")


_SHOWN = ("escape_rate", "false_reject_rate", "image_auroc", "mean_iou", "review_rate", "false_defects_per_100_parts")


@models_app.command("compare")
def compare_cmd(
    a: Annotated[str, typer.Argument(help="champion (e.g. promoted)")],
    b: Annotated[str, typer.Argument(help="challenger (e.g. latest)")],
    registry: RegistryOpt = None,
    magsynth_n: Annotated[int, typer.Option(min=0, help="first N magsynth-v2 test parts (0: skip)")] = 10,
    data: Annotated[Path | None, typer.Option(help="real labelled data (default: the challenger's, from its lineage)")]
    = None,
    class_map: Annotated[Path | None, typer.Option(help="class map for --data")] = None,
    val_fraction: Annotated[float | None, typer.Option(help="split for --data (default: lineage's or 0.2)")] = None,
    no_real: Annotated[bool, typer.Option("--no-real", help="skip the real validation split")] = False,
    min_defect_px: Annotated[int, typer.Option(min=1, help="real images: flagged at this many defect pixels")] = 12,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
) -> None:
    """Run both models on the same suites, side by side; record the figures in the registry."""
    from magspect.datasets.labelled import ClassMap, LabelledDataError
    from magspect.inspect.backend import ModelError, Segmenter
    from magspect.models.registry import check_promotion
    from magspect.training.realdata import DEFAULT_SPLIT_SALT, guess_kind, open_labelled, split_by_content

    reg = _reg(registry)
    ma, mb = _get(reg, a), _get(reg, b)
    results: dict[str, dict[str, dict]] = {ma.version: {}, mb.version: {}}
    if magsynth_n:
        from magspect.inspect.evaluate import evaluate_suite_subset, suite_key

        key = suite_key(magsynth_n)
        for m in (ma, mb):
            console.print(f"{m.version}: {key}")
            try:
                results[m.version].update(evaluate_suite_subset(m.onnx_path, magsynth_n))
            except ModelError as exc:
                fail(str(exc))
    if not no_real:
        real = (mb.lineage.get("data") or {}).get("real") or (ma.lineage.get("data") or {}).get("real") or {}
        path = data or (Path(real["path"]) if real.get("path") else None)
        if path is None:
            console.print("no real data given and none in the lineage: real validation split skipped")
        else:
            cm = class_map or (Path(real["class_map"]) if real.get("class_map") and data is None else None)
            frac = val_fraction or (real.get("val_fraction") if data is None else None) or 0.2
            salt = (real.get("split_salt") if data is None else None) or DEFAULT_SPLIT_SALT
            try:
                ds = open_labelled(guess_kind(path), path, ClassMap.from_file(cm) if cm else None,
                                   real.get("image_root") if data is None else None)
                split = split_by_content(ds, frac, salt)
            except (LabelledDataError, ValueError) as exc:
                fail(str(exc))
            key = f"real-val:{split.val_sha256[:12]}"
            from magspect.training.retrain import evaluate_real

            for m in (ma, mb):
                console.print(f"{m.version}: {key} ({len(split.val)} images of {path})")
                try:
                    r = evaluate_real(Segmenter(m.onnx_path, warmup=False), split.val, min_defect_px)
                except ModelError as exc:
                    fail(str(exc))
                results[m.version][key] = {**r, "data": str(path)}
    for m in (ma, mb):
        for key, fig in results[m.version].items():
            reg.add_metrics(m.version, key, fig)
    from rich.table import Table

    table = Table(title=f"{ma.version} (A) vs {mb.version} (B)")
    for col in ("suite", "figure", "A", "B", "B - A"):
        table.add_column(col)
    for key in results[ma.version]:
        fa, fb = results[ma.version][key], results[mb.version][key]
        for name in _SHOWN:
            if name in fa or name in fb:
                va, vb = fa.get(name), fb.get(name)
                d = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
                table.add_row(key, name, _fmt(va), _fmt(vb), _fmt(d))
        for cls, vb in (fb.get("iou_per_class") or {}).items():
            va = (fa.get("iou_per_class") or {}).get(cls)
            d = vb - va if va is not None and vb is not None else None
            table.add_row(key, f"IoU {cls}", _fmt(va), _fmt(vb), _fmt(d))
    console.print(table)
    margin = float(reg.policy.get("max_escape_rate_increase", 0.0))
    dec = check_promotion(reg.get(ma.version).metrics, reg.get(mb.version).metrics, margin)
    console.print(f"promotion of {mb.version} over {ma.version}: {'allowed' if dec.allowed else 'REFUSED'}")
    for r in dec.reasons:
        console.print(f"  {r}", highlight=False)
    if json_out is not None:
        json_out.write_text(json.dumps({"a": ma.version, "b": mb.version, "results": results,
                                        "promotion": {"allowed": dec.allowed, "reasons": dec.reasons}},
                                       indent=2, default=str), encoding="utf-8")


@models_app.command("path")
def path_cmd(
    version: Annotated[str, typer.Argument(help="promoted (default), latest or a version")] = "promoted",
    registry: RegistryOpt = None,
    int8: Annotated[bool, typer.Option("--int8", help="the INT8 file when the version has one")] = False,
) -> None:
    """Print a version's ONNX path (checksum verified), e.g. ``magspect serve --model "$(magspect models path)"``."""
    from magspect.models.registry import RegistryError, promoted_model_path

    reg = _reg(registry)
    try:
        if version == "promoted":
            p = promoted_model_path(reg, int8=int8)
            if p is None:
                fail(f"registry {reg.root}: no model is promoted", code=1)
        else:
            mv = reg.verify(version)
            p = mv.int8_path if int8 and mv.int8_path else mv.onnx_path
    except RegistryError as exc:
        fail(str(exc), code=1)
    typer.echo(str(p))
