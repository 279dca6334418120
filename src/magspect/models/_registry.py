"""Model registry (timm style): ``@register_model`` on a factory, ``create_model(name, **kw)``.

Torch-free on purpose: the factories live in the architecture modules, which import torch and are
imported lazily by :func:`create_model`, so importing ``magspect.models`` never loads torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from magspect.types import CLASS_NAMES

#: Modules that hold ``@register_model`` factories; imported on first use.
_ARCH_MODULES: tuple[str, ...] = ("magspect.models.unet",)


@dataclass(frozen=True)
class ModelConfig:
    """A model's default configuration, stored next to its weights (in the manifest).

    ``mean``/``std`` apply to the input *after* it has been scaled to [0, 1] (8-bit /255, 16-bit
    /65535); the network applies them itself, inside the graph, so callers only scale.
    """

    in_chans: int = 1
    num_classes: int = len(CLASS_NAMES)
    input_size_hw: tuple[int, int] = (256, 256)  # training crop
    input_multiple: int = 32  # H and W must be multiples of this
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)
    tile_size_px: int = 512  # recommended inference tile
    tile_overlap_px: int = 32
    extra: dict[str, Any] = field(default_factory=dict)

    def with_channels(self, in_chans: int) -> ModelConfig:
        """The same config for ``in_chans`` input channels (mean/std broadcast per channel)."""
        if in_chans == self.in_chans:
            return self
        return replace(self, in_chans=in_chans, mean=(self.mean[0],) * in_chans, std=(self.std[0],) * in_chans)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Callable[..., Any]
    default_cfg: ModelConfig
    description: str


_REGISTRY: dict[str, _Entry] = {}


def register_model(
    name: str | None = None, *, default_cfg: ModelConfig | None = None, description: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a model factory ``fn(cfg: ModelConfig, **kw) -> nn.Module`` under ``name``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key].factory is not fn:
            raise ValueError(f"model {key!r} is already registered")
        _REGISTRY[key] = _Entry(key, fn, default_cfg or ModelConfig(), description or (fn.__doc__ or "").strip())
        return fn

    return deco


def _load_archs() -> None:
    for mod in _ARCH_MODULES:
        importlib.import_module(mod)


def list_models() -> list[str]:
    """Names of every registered model (imports the architecture modules, hence torch)."""
    _load_archs()
    return sorted(_REGISTRY)


def default_cfg(name: str) -> ModelConfig:
    _load_archs()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name].default_cfg


def create_model(name: str, *, in_chans: int | None = None, **kwargs: Any) -> Any:
    """Build the registered model ``name`` (an ``nn.Module``; weights initialised from scratch).

    ``in_chans`` overrides the default (1 grayscale, 3 RGB); other keyword arguments go to the
    factory. The module carries its resolved config as ``model.cfg`` and ``model.model_name``.
    """
    cfg = default_cfg(name)
    if in_chans is not None:
        cfg = cfg.with_channels(in_chans)
    model = _REGISTRY[name].factory(cfg, **kwargs)
    model.cfg = cfg
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
