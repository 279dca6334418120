"""A folder of versioned models with metrics and lineage, and one promoted model (torch-free).

Layout::

    ROOT/
      registry.json          promoted version, promotion history, policy (escape-rate margin)
      v0001/
        model.onnx           the FP32 export (manifest embedded) + model.manifest.json beside it
        model-int8.onnx      optional
        metrics.json         suite key -> figures ({"real-val:<hash>": {...}, "magsynth-v2/test[:20]": {...}})
        lineage.json         parent model, data hashes, training config
        info.json            version, sha256 of the ONNX, created_at, notes

The station and the service call :func:`promoted_model_path` to load the promoted model. Promotion
is gated (:func:`check_promotion`): a challenger whose escape rate on any suite both models were
measured on is worse than the champion's by more than the policy's margin is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from magspect.models.manifest import Manifest, manifest_path_for

REGISTRY_FILE = "registry.json"
DEFAULT_MAX_ESCAPE_RATE_INCREASE = 0.0  # absolute (0.01 = one percentage point)


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, refused promotion, ...)."""


def default_registry_path() -> Path:
    """``$MAGSPECT_MODELS``, else ``$MAGSPECT_HOME/models``, else ``./magspect-models``."""
    if os.environ.get("MAGSPECT_MODELS"):
        return Path(os.environ["MAGSPECT_MODELS"])
    if os.environ.get("MAGSPECT_HOME"):
        return Path(os.environ["MAGSPECT_HOME"]) / "models"
    return Path("magspect-models")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@dataclass(frozen=True)
class ModelVersion:
    version: str
    folder: Path
    info: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    lineage: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.folder / "model.onnx"

    @property
    def int8_path(self) -> Path | None:
        p = self.folder / "model-int8.onnx"
        return p if p.is_file() else None

    def manifest(self) -> Manifest:
        return Manifest.from_file(manifest_path_for(self.onnx_path))

    @property
    def parent(self) -> str | None:
        p = self.lineage.get("parent") or {}
        return p.get("registry_version") or p.get("ref")


@dataclass(frozen=True)
class PromotionDecision:
    allowed: bool
    reasons: list[str] = field(default_factory=list)  # why (numbers included), either way
    compared_suites: list[str] = field(default_factory=list)

    def message(self) -> str:
        return "; ".join(self.reasons)


def check_promotion(
    champion: dict[str, dict[str, Any]] | None,
    challenger: dict[str, dict[str, Any]],
    max_escape_rate_increase: float = DEFAULT_MAX_ESCAPE_RATE_INCREASE,
) -> PromotionDecision:
    """Compare escape rates suite by suite (suites both were measured on, with an escape rate).

    Refused when the challenger's escape rate exceeds the champion's by more than
    ``max_escape_rate_increase`` on any of them, or when there is no suite to compare on."""
    if champion is None:
        return PromotionDecision(True, ["no champion yet: first promotion"])
    shared = sorted(
        k for k in set(champion) & set(challenger)
        if champion[k].get("escape_rate") is not None and challenger[k].get("escape_rate") is not None
    )
    if not shared:
        return PromotionDecision(
            False,
            ["no suite with an escape rate measured for both models "
             f"(champion: {sorted(champion) or 'none'}, challenger: {sorted(challenger) or 'none'}); "
             "run `magspect models compare CHAMPION CHALLENGER` first"],
        )
    reasons, ok = [], True
    for k in shared:
        a, b = float(champion[k]["escape_rate"]), float(challenger[k]["escape_rate"])
        if b > a + max_escape_rate_increase + 1e-12:
            ok = False
            reasons.append(
                f"{k}: challenger escape rate {100 * b:.2f} % is worse than the champion's {100 * a:.2f} % "
                f"by {100 * (b - a):.2f} points (allowed margin {100 * max_escape_rate_increase:.2f} points)"
            )
        else:
            reasons.append(f"{k}: escape rate {100 * b:.2f} % vs champion {100 * a:.2f} % (ok)")
    return PromotionDecision(ok, reasons, shared)


class ModelRegistry:
    """See the module docstring. ``root`` None: :func:`default_registry_path`."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry_path()

    # -- state ------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        p = self.root / REGISTRY_FILE
        if not p.is_file():
            return {"promoted": None, "history": [], "policy": {
                "max_escape_rate_increase": DEFAULT_MAX_ESCAPE_RATE_INCREASE}}
        return json.loads(p.read_text(encoding="utf-8"))

    def _save_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(self.root / REGISTRY_FILE, state)

    @property
    def policy(self) -> dict[str, Any]:
        return self._state().get("policy", {})

    def set_policy(self, **policy: Any) -> None:
        state = self._state()
        state.setdefault("policy", {}).update(policy)
        self._save_state(state)

    # -- versions ---------------------------------------------------------------------------------
    def versions(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir()
                      if d.is_dir() and d.name.startswith("v") and d.name[1:].isdigit() and (d / "info.json").is_file())

    def list(self) -> list[ModelVersion]:
        return [self._load(v) for v in self.versions()]

    def _load(self, version: str) -> ModelVersion:
        d = self.root / version

        def read(name: str) -> dict:
            p = d / name
            return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}

        return ModelVersion(version, d, read("info.json"), read("metrics.json"), read("lineage.json"))

    def resolve(self, ref: str) -> str:
        """``v0003``, ``3``, ``latest`` or ``promoted`` -> ``v0003``."""
        versions = self.versions()
        if ref == "latest":
            if not versions:
                raise RegistryError(f"registry {self.root} is empty")
            return versions[-1]
        if ref == "promoted":
            p = self._state().get("promoted")
            if p is None:
                raise RegistryError(f"registry {self.root}: no model is promoted")
            return p
        v = f"v{int(ref.lstrip('v')):04d}" if ref.lstrip("v").isdigit() else ref
        if v not in versions:
            raise RegistryError(f"registry {self.root}: no version {ref!r} (have {', '.join(versions) or 'none'})")
        return v

    def get(self, ref: str) -> ModelVersion:
        return self._load(self.resolve(ref))

    def register(
        self,
        onnx_path: str | Path,
        *,
        metrics: dict[str, dict[str, Any]] | None = None,
        lineage: dict[str, Any] | None = None,
        notes: str = "",
        int8_path: str | Path | None = None,
    ) -> ModelVersion:
        """Copy an exported model (with its manifest) in as the next version; not promoted."""
        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            raise RegistryError(f"{onnx_path}: no such model file")
        man_src = manifest_path_for(onnx_path)
        manifest = Manifest.from_file(man_src) if man_src.is_file() else Manifest.from_onnx(onnx_path)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            shutil.copy2(onnx_path, tmp / "model.onnx")
            manifest.write(tmp / "model.manifest.json")
            if int8_path is not None:
                shutil.copy2(int8_path, tmp / "model-int8.onnx")
                m8 = manifest_path_for(int8_path)
                if Path(m8).is_file():
                    shutil.copy2(m8, tmp / "model-int8.manifest.json")
            _write_json(tmp / "metrics.json", metrics or {})
            _write_json(tmp / "lineage.json", lineage or {})
            for _ in range(100):  # another writer may take the number first: rename is atomic
                versions = self.versions()
                n = int(versions[-1][1:]) + 1 if versions else 1
                version = f"v{n:04d}"
                info = {"version": version, "sha256": _sha256(tmp / "model.onnx"), "created_at": _now(),
                        "notes": notes, "model_name": manifest.model_name, "source": str(onnx_path)}
                _write_json(tmp / "info.json", info)
                try:
                    os.rename(tmp, self.root / version)
                    break
                except OSError:
                    continue
            else:
                raise RegistryError(f"registry {self.root}: could not allocate a version folder")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return self._load(version)

    def add_metrics(self, ref: str, suite: str, figures: dict[str, Any]) -> ModelVersion:
        """Record (replace) one suite's figures for a version."""
        mv = self.get(ref)
        metrics = dict(mv.metrics)
        metrics[suite] = figures
        _write_json(mv.folder / "metrics.json", metrics)
        return self._load(mv.version)

    def verify(self, ref: str) -> ModelVersion:
        mv = self.get(ref)
        if not mv.onnx_path.is_file():
            raise RegistryError(f"{mv.version}: {mv.onnx_path} is missing")
        got = _sha256(mv.onnx_path)
        if got != mv.info.get("sha256"):
            raise RegistryError(f"{mv.version}: model.onnx sha256 {got[:12]}… differs from the registered "
                                f"{str(mv.info.get('sha256'))[:12]}…; the file was changed")
        return mv

    # -- promotion ------------------------------------------------------------------------------------
    def promoted(self) -> ModelVersion | None:
        p = self._state().get("promoted")
        return self._load(p) if p else None

    def promote(
        self, ref: str, *, max_escape_rate_increase: float | None = None, force: bool = False, reason: str = ""
    ) -> PromotionDecision:
        """Promote ``ref`` if :func:`check_promotion` allows it against the current champion (or ``force``).

        Raises :class:`RegistryError` with the decision's reasons when refused."""
        state = self._state()
        challenger = self.verify(ref)
        champ_v = state.get("promoted")
        if champ_v == challenger.version:
            return PromotionDecision(True, [f"{challenger.version} is already promoted"])
        margin = max_escape_rate_increase
        if margin is None:
            margin = float(state.get("policy", {}).get("max_escape_rate_increase", DEFAULT_MAX_ESCAPE_RATE_INCREASE))
        champion = self._load(champ_v) if champ_v else None
        decision = check_promotion(champion.metrics if champion else None, challenger.metrics, margin)
        if not decision.allowed and not force:
            raise RegistryError(
                f"promotion of {challenger.version} over champion {champ_v} refused: {decision.message()}"
            )
        state["promoted"] = challenger.version
        state.setdefault("history", []).append({
            "action": "promote", "version": challenger.version, "previous": champ_v, "at": _now(),
            "forced": bool(force and not decision.allowed), "reasons": decision.reasons, "note": reason,
        })
        self._save_state(state)
        return decision

    def rollback(self) -> ModelVersion:
        """Promote again the model that was promoted before the current one."""
        state = self._state()
        current = state.get("promoted")
        if current is None:
            raise RegistryError(f"registry {self.root}: nothing is promoted, nothing to roll back")
        previous = None
        for h in reversed(state.get("history", [])):
            if h.get("action") in ("promote", "rollback") and h.get("version") == current:
                previous = h.get("previous")
                break
        if previous is None:
            raise RegistryError(
                f"registry {self.root}: {current} was the first promoted model; nothing to roll back to"
            )
        self.verify(previous)
        prior_previous = None
        for h in reversed(state.get("history", [])):
            if h.get("version") == previous and h.get("action") in ("promote", "rollback"):
                prior_previous = h.get("previous")
                break
        state["promoted"] = previous
        state["history"].append({"action": "rollback", "version": previous, "previous": prior_previous,
                                 "from": current, "at": _now()})
        self._save_state(state)
        return self._load(previous)

    def history(self) -> list[dict[str, Any]]:
        return list(self._state().get("history", []))


def promoted_model_path(registry: str | Path | ModelRegistry | None = None, *, int8: bool = False) -> Path | None:
    """The ONNX file of the promoted model (checksum verified), or None when nothing is promoted.

    ``int8``: its INT8 sibling when the version has one (else the FP32 file)."""
    reg = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    state = reg._state()
    if not state.get("promoted"):
        return None
    mv = reg.verify(state["promoted"])
    if int8 and mv.int8_path is not None:
        return mv.int8_path
    return mv.onnx_path
