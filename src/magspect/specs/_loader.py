"""Load specs from YAML with errors that name the file, the line and the field."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from magspect.specs._schema import Spec


class SpecError(ValueError):
    """A spec that cannot be loaded; the message names the file, line and field."""


class UnknownSpecError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


def _node_lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML tree to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[(*path, key)] = k.start_mark.line + 1
            _node_lines(v, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[(*path, i)] = v.start_mark.line + 1
            _node_lines(v, (*path, i), out)
    return out


def _line_for(loc: tuple, lines: dict[tuple, int]) -> int | None:
    loc = tuple(x for x in loc if not (isinstance(x, str) and x in ("function-after", "function-before")))
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def parse_spec(text: str, source: str = "<string>") -> Spec:
    """Parse one spec from YAML text. Raises SpecError naming ``source``, the line and the field."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise SpecError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1: a spec must be a YAML mapping, got {type(data).__name__}")
    lines = _node_lines(node) if node is not None else {}
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(x) for x in loc) or "(top level)"
            line = _line_for(loc, lines)
            where = f"{source}:{line}" if line else source
            msgs.append(f"{where}: field '{field}': {err['msg']}")
        raise SpecError("\n".join(msgs)) from None


def load_spec_file(path: str | Path) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec file: {exc.strerror or exc}") from None
    return parse_spec(text, str(path))


@cache
def _bundled() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    folder = resources.files("magspect.specs") / "data"
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".yaml", ".yml")):
            spec = parse_spec(entry.read_text(encoding="utf-8"), f"magspect/specs/data/{entry.name}")
            if spec.id in specs:
                raise SpecError(f"duplicate bundled spec id {spec.id!r}")
            specs[spec.id] = spec
    return specs


def list_specs() -> list[Spec]:
    """The bundled specs, sorted by id."""
    return [s for _, s in sorted(_bundled().items())]


def get_spec(spec: str | Path) -> Spec:
    """A bundled spec by id, or a spec file by path (anything ending in .yaml/.yml)."""
    key = str(spec)
    if key.endswith((".yaml", ".yml")):
        return load_spec_file(key)
    try:
        return _bundled()[key]
    except KeyError:
        known = ", ".join(sorted(_bundled()))
        raise UnknownSpecError(f"unknown spec {key!r}; bundled specs: {known}") from None
