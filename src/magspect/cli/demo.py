"""``magspect demo``: synthetic parts with known truth, inspected by the bundled model, judged, reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from magspect.cli._common import console, fail

DEMO_SPECS = (
    "def-blk-20x10x5-nicuni",
    "com-blk-20x10x5-zn",
    "def-disc-d10-t3-nicuni",
    "com-ring-od20-id10-t5",
    "ev-arc-r30-r25-40deg",
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_cmd)


def demo_cmd(
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="Number of parts.")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of the first part.")] = 2026,
    out: Annotated[Path, typer.Option(help="Output folder (images, report.html, results.jsonl).")] = Path(
        "magspect-demo"
    ),
    spec: Annotated[list[str] | None, typer.Option(help="Spec id(s) to cycle through (default: all bundled).")] = None,
    int8: Annotated[bool, typer.Option("--int8/--fp32", help="Bundled FP32 model (default) or INT8.")] = False,
    model: Annotated[Path | None, typer.Option(help="ONNX model instead of the bundled one.")] = None,
) -> None:
    """Generate N synthetic parts with known truth, inspect them, print truth vs verdict, write a report."""
    import cv2
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.table import Table

    from magspect.datasets import FRONT_LIGHTINGS, SynthConfig, generate_part
    from magspect.inspect.backend import ModelError
    from magspect.inspect.evaluate import evaluate_parts
    from magspect.inspect.inspector import Inspector
    from magspect.inspect.report import ReportEntry, draw_overlay, write_html_report
    from magspect.specs import UnknownSpecError, get_spec

    specs = tuple(spec) if spec else DEMO_SPECS
    try:
        for s in specs:
            get_spec(s)
    except UnknownSpecError as exc:
        fail(str(exc))
    try:
        inspector = Inspector(model, int8=int8 and model is None)
    except ModelError as exc:
        fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    console.print(
        f"magspect demo: {n} synthetic parts ({', '.join(specs)}), model {inspector.model_ref.name} "
        f"on {inspector.model_ref.provider}"
    )
    # a station's lighting: each view front-lit (coaxial, dome or dark-field: the surface shows) and
    # also back-lit (the silhouette the dimensions are measured on)
    config = SynthConfig(backlight=True, lighting=FRONT_LIGHTINGS)

    def make(i: int):  # noqa: ANN202
        p = generate_part(spec=specs[i % len(specs)], seed=seed + i, config=config)
        for v, rv in p.views.items():
            cv2.imwrite(str(out / "images" / f"{p.truth['part_id']}_{v}.png"), rv.image)
            cv2.imwrite(str(out / "images" / f"{p.truth['part_id']}_{v}_backlight.png"), rv.backlight)
        return p

    def parts():
        # the generator (numpy, releases the GIL) renders the next parts while the current one is
        # inspected: a camera that keeps delivering while the Inspector works
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            ahead = [pool.submit(make, i) for i in range(min(n, 3))]
            for i in range(n):
                p = ahead.pop(0).result()
                if i + 3 < n:
                    ahead.append(pool.submit(make, i + 3))
                yield p

    entries: list[ReportEntry] = []
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        task = bar.add_task("generating and inspecting", total=n)

        def on_part(o):  # noqa: ANN001
            ov = {}
            for v, art in o.inspection.views.items():
                if art.image is None:
                    continue
                outline = art.metrology.ideal_outline_xy_px[0] if art.metrology is not None else None
                cm = art.segmentation.class_mask if art.segmentation is not None else None
                full = draw_overlay(art.image, cm, o.inspection.result, view=v, outline_px=outline)
                ov[v] = cv2.resize(full, (640, 640 * full.shape[0] // full.shape[1]), interpolation=cv2.INTER_AREA)
            entries.append(ReportEntry(o.inspection.result, ov, o.true_verdict, source=o.part_id))
            bar.advance(task)

        ev = evaluate_parts(inspector, parts(), progress=on_part)  # overlays drawn in on_part

    table = Table(title=f"{n} parts: truth vs magspect", show_lines=False, pad_edge=False)
    width = max(console.width, 80)
    reason_w = max(20, width - 26 - 8 - 10 - 10)
    table.add_column("part", no_wrap=True)
    table.add_column("truth", no_wrap=True)
    table.add_column("magspect", no_wrap=True)
    table.add_column("first reason", no_wrap=True)
    colour = {"PASS": "green", "REJECT": "red", "REVIEW": "yellow"}
    for o in ev.outcomes:
        r = o.inspection.result
        # ✓ right; ? a good part sent to review; ✗ an escape (bad part passed) or a false reject
        good = o.true_verdict == "PASS"
        if (good and r.verdict == "PASS") or (not good and r.verdict != "PASS"):
            mark = "[green]✓[/]"
        elif good and r.verdict == "REVIEW":
            mark = "[yellow]?[/]"
        else:
            mark = "[red]✗[/]"
        first = r.reasons[0].message if r.reasons else ""
        first = first if len(first) <= reason_w else first[: reason_w - 1] + "…"
        part = o.part_id if len(o.part_id) <= 24 else "…" + o.part_id[-23:]
        table.add_row(
            part, f"[{colour[o.true_verdict.value]}]{o.true_verdict.value}[/]",
            f"[{colour[r.verdict.value]}]{r.verdict.value:<6}[/] {mark}", first,
        )
    console.print(table)
    s = ev.summary
    console.print(
        f"escape rate {s['escape_rate']:.1%} ({s['n_nonconforming']} truly nonconforming), "
        f"false rejects {s['false_reject_rate']:.1%} ({s['n_conforming']} conforming), "
        f"reviews {s['review_rate']:.1%}; {s['parts_per_s']:.1f} parts/s incl. generation; "
        f"median stage times (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in s["median_stage_ms"].items())
    )
    report = write_html_report(entries, out / "report.html", title=f"magspect demo: {n} synthetic parts")
    with open(out / "results.jsonl", "w", encoding="utf-8") as f:
        for o in ev.outcomes:
            f.write(json.dumps({"true_verdict": o.true_verdict.value, **o.inspection.result.model_dump(mode="json")}))
            f.write("\n")
    (out / "summary.json").write_text(json.dumps(s, indent=2, default=str), encoding="utf-8")
    console.print(f"report: {report}  results: {out / 'results.jsonl'}  images: {out / 'images'}")
