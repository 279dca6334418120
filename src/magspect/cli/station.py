"""``magspect station --config station.yaml``: run the inline camera station until stopped."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import fail


def register(app: typer.Typer) -> None:
    app.command("station")(station)


def station(
    config: Annotated[Path, typer.Option("--config", "-c", help="station.yaml (see configs/station-sim.yaml).")],
    spec: Annotated[str | None, typer.Option(help="Override the config's spec (recipe).")] = None,
    duration_s: Annotated[float | None, typer.Option(help="Stop gracefully after this many seconds.")] = None,
    ack_log: Annotated[Path | None, typer.Option(help="Append '<serial> <record id>' per stored record.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live status line.")] = False,
) -> None:
    """Acquire, inspect and signal rejects; every part recorded. Ctrl-C / SIGTERM: graceful stop (drains the queues).

    SIGHUP re-reads the config's spec and switches the recipe without a restart. Final counters: JSON on stdout.
    """
    from pydantic import ValidationError

    from magspect.edge import StationConfig, build_station
    from magspect.specs import UnknownSpecError

    try:
        cfg = StationConfig.from_yaml(config)
        if spec:
            cfg = cfg.model_copy(update={"spec": spec})
    except (OSError, ValidationError, ValueError) as exc:
        fail(f"invalid station config {config}: {exc}")
    ack = open(ack_log, "a", encoding="utf-8") if ack_log else None  # noqa: SIM115 - closed below

    def on_record(d) -> None:  # noqa: ANN001
        if ack is not None:
            ack.write(f"{d.serial} {d.record_id}\n")
            ack.flush()

    try:
        st = build_station(cfg, on_record=on_record)
    except (UnknownSpecError, ValueError, RuntimeError) as exc:
        fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - store/model errors: one line, not a traceback
        fail(f"{type(exc).__name__}: {exc}")
    if not quiet:  # what judges the parts, before the first one arrives
        insp = st.inspector
        name = insp.model_ref.name
        mode = f"{insp.processes} worker processes" if hasattr(insp, "processes") else f"{cfg.workers} threads"
        print(f"{cfg.name}: recipe {cfg.spec}, model {name}, {mode}", file=sys.stderr)
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:  # noqa: ANN001
        if signum == getattr(signal, "SIGHUP", None):
            try:
                st.set_recipe(StationConfig.from_yaml(config).spec)
            except Exception as exc:  # noqa: BLE001 - keep running with the old recipe
                print(f"recipe not changed: {exc}", file=sys.stderr)
            return
        stop.set()

    for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if s is not None:
            signal.signal(s, on_signal)
    try:
        st.start()
    except Exception as exc:  # noqa: BLE001
        fail(f"station could not start: {exc}")
    t_end = time.monotonic() + duration_s if duration_s else None
    try:
        while not stop.is_set():
            if st.wait_source_done(cfg.status_period_s):
                break
            if not quiet:
                print("\r\x1b[K" + st.status_line(), end="", file=sys.stderr, flush=True)
            if cfg.health_file:
                tmp = cfg.health_file.with_suffix(".tmp")
                tmp.write_text(json.dumps(st.snapshot()), encoding="utf-8")
                tmp.replace(cfg.health_file)
            if t_end is not None and time.monotonic() >= t_end:
                break
    finally:
        st.stop()
        if ack is not None:
            ack.close()
        if cfg.health_file:
            cfg.health_file.write_text(json.dumps(st.snapshot()), encoding="utf-8")
    if not quiet:
        print("\r\x1b[K" + st.status_line(), file=sys.stderr)
    snap = st.snapshot()
    print(json.dumps({k: snap[k] for k in ("acquired", "inspected", "fail_safe", "deadline_misses", "passed",
                                          "rejected", "review", "recorded", "record_errors", "worker_restarts",
                                          "latency_p99_ms")}))
