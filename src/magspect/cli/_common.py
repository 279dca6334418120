"""Helpers shared by the CLI verbs: one-line errors instead of tracebacks."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from magspect.types import TTA_MODES

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line error (no traceback) and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_config(cls: Any, path: Path) -> Any:  # noqa: ANN401 - a pydantic model class with from_yaml, and its instance
    """``cls.from_yaml(path)``, or a one-line error naming the file and what is wrong in it (missing
    file, the first invalid field as ``a.b: message``, YAML syntax)."""
    from pydantic import ValidationError

    if not path.is_file():
        fail(f"config file not found: {path}")
    try:
        return cls.from_yaml(path)
    except ValidationError as exc:
        e = exc.errors()[0]
        fail(f"{path}: {'.'.join(str(x) for x in e['loc'])}: {e['msg']}")
    except Exception as exc:  # YAML syntax
        fail(f"{path}: {exc}")


# the CLI's choice of magspect.types.TTA_MODES (typer needs an Enum)
Tta = StrEnum("Tta", {m: m for m in TTA_MODES})
TTA_HELP = ("Test-time augmentation: none, hflip (each view and its mirror image: 2 model runs per view, fewer "
            "false calls) or flips (4 runs).")
TtaOpt = Annotated[Tta, typer.Option("--tta", help=TTA_HELP)]
#: ``--subtypes`` of the verbs that inspect (inspect, evaluate): the coating-flaw subtype classifier.
SubtypesOpt = Annotated[
    str | None,
    typer.Option(help="Coating-flaw subtype classifier ONNX, or 'none': every coating flaw not shaped like a "
                 "scratch judged as the strictest subtype (default: the bundled one when it was trained for the "
                 "model)."),
]

#: ``--verifier`` of the verbs that inspect (inspect, evaluate): the look-alike verifier.
VerifierOpt = Annotated[
    str | None,
    typer.Option(help="Look-alike verifier ONNX, 'darkfield' (the bundled one for views lit only with dark-field "
                 "light) or 'none' (default: the bundled one when it was trained for the model)."),
]


#: ``--review-below`` of the verbs that inspect (inspect, evaluate): the verifier's review band.
ReviewBelowOpt = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="The verifier's review band: a defect it keeps but scores under this "
                 "sends the part to REVIEW, not REJECT (default: the verifier's manifest; 0: none)."),
]
