"""Entry point: ``magspect --help`` lists every verb."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="magspect",
    help="Quality inspection for sintered NdFeB magnets: defects, dimensions and a spec gate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Quality inspection for sintered NdFeB magnets: defects, dimensions and a spec gate."""


# Each module registers its verbs on ``app`` with ``register(app)``. A verb module must import
# torch (or anything heavy) inside its functions only, so ``magspect --help`` stays fast.
_VERB_MODULES = (
    "demo", "synth", "specs", "measure", "calibrate", "train", "export", "inspect", "evaluate",
    "serve", "station", "models", "retrain", "records", "data", "verifier", "sizing",
)

for _name in _VERB_MODULES:
    try:
        _mod = importlib.import_module(f"magspect.cli.{_name}")
    except ModuleNotFoundError as exc:  # verb not written yet
        if exc.name != f"magspect.cli.{_name}":
            raise
        continue
    _mod.register(app)


@app.command()
def version() -> None:
    """Print magspect's version."""
    from magspect import __version__

    typer.echo(__version__)


def main() -> None:
    app()
