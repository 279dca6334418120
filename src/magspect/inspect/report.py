"""Pictures and pages a quality engineer reads: overlays on the part and an HTML report.

Overlays: defect outlines coloured by class, the fitted part outline, and the measurements written
on the image. The report is one self-contained HTML file (thumbnails embedded): verdict and reasons
per part, totals, and, where the parts are synthetic, the true verdict beside magspect's.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from magspect.types import CLASS_IDS, Defect, InspectionResult, MeasurementStatus, Verdict

#: BGR colours per defect class, chosen to be told apart by colour-blind readers too.
CLASS_COLOURS_BGR: dict[str, tuple[int, int, int]] = {
    "crack": (40, 40, 255),  # red
    "chip": (0, 165, 255),  # orange
    "coating_flaw": (255, 80, 255),  # magenta
}
VERDICT_COLOURS_BGR = {Verdict.PASS: (60, 180, 60), Verdict.REJECT: (40, 40, 230), Verdict.REVIEW: (0, 190, 230)}
_VERDICT_CSS = {Verdict.PASS: "#2e7d32", Verdict.REJECT: "#c62828", Verdict.REVIEW: "#ef8f00"}


def to_display_bgr(image: np.ndarray) -> np.ndarray:
    """Any 8/16-bit grayscale or BGR image -> 8-bit BGR for drawing (16-bit scaled by its dtype range)."""
    img = image
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(img)


def draw_overlay(
    image: np.ndarray,
    class_mask: np.ndarray | None,
    result: InspectionResult | None = None,
    *,
    view: str = "top",
    outline_px: np.ndarray | None = None,
) -> np.ndarray:
    """The image with defect outlines by class, the fitted outline and this view's measurements.

    Candidates dismissed as look-alikes (by the verifier, or a crack whose line runs on off the
    part; the Inspector's mask no longer holds them) are boxed in grey and labelled: not judged.
    Defects the verifier kept but is unsure of (they can send the part to REVIEW only) are boxed in
    amber, "review?"."""
    out = to_display_bgr(image).copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 400))
    dismissed = [d.bbox_xyxy_px for d in (result.dismissed if result is not None else ()) if d.view == view
                 and d.bbox_xyxy_px is not None]
    if outline_px is not None and len(outline_px) >= 2:
        pts = np.round(np.asarray(outline_px, np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(out, [pts], True, (80, 200, 80), thick, cv2.LINE_AA, shift=4)
    if class_mask is not None:
        for name, colour in CLASS_COLOURS_BGR.items():
            m = (class_mask == CLASS_IDS[name]).astype(np.uint8)
            if not m.any():
                continue
            m = cv2.dilate(m, np.ones((3, 3), np.uint8))  # make 1-px cracks visible
            contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(out, contours, -1, colour, thick + 1, cv2.LINE_AA)
    unsure = [d.bbox_xyxy_px for d in (result.defects if result is not None else ()) if d.view == view
              and d.review_reason and d.bbox_xyxy_px is not None]
    for boxes, colour, word in ((dismissed, (150, 150, 150), "look-alike"), (unsure, (0, 200, 255), "review?")):
        for x0, y0, x1, y1 in boxes:
            cv2.rectangle(out, (int(x0) - 3, int(y0) - 3), (int(x1) + 3, int(y1) + 3), colour, thick, cv2.LINE_AA)
            cv2.putText(out, word, (int(x0), max(int(y0) - 6, 8)), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.35, min(h, w) / 2400), colour, 1, cv2.LINE_AA)
    # a coating flaw's kind, where the shape or the subtype classifier narrowed it down
    for d in (result.defects if result is not None else ()):
        kind = subtype_words(d)
        if d.view == view and d.bbox_xyxy_px is not None and kind and not d.review_reason:
            x0, _, _, y1 = d.bbox_xyxy_px
            cv2.putText(out, kind, (int(x0), min(int(y1) + 14, h - 2)), cv2.FONT_HERSHEY_SIMPLEX,
                        max(0.35, min(h, w) / 2400), CLASS_COLOURS_BGR[d.class_name], 1, cv2.LINE_AA)
    if result is not None:
        scale = max(0.4, min(h, w) / 1400)
        y = int(30 * scale * 1.6)
        colour = VERDICT_COLOURS_BGR[result.verdict]
        label = f"{result.verdict.value}  {result.part_id or ''}"
        cv2.putText(out, label, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale * 1.4, colour, thick + 1, cv2.LINE_AA)
        for m in result.measurements.values():
            if m.view not in (None, view) or m.value is None:
                continue
            y += int(26 * scale * 1.6)
            unit = "mm" if m.unit == "mm" else "deg"
            ok = m.status == MeasurementStatus.OK
            c = (60, 200, 60) if ok else ((0, 190, 230) if m.status == MeasurementStatus.GUARD_BAND else (40, 40, 230))
            text = f"{m.name} {m.value:.3f} {unit} ({m.status.value})"
            cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, scale, c, thick, cv2.LINE_AA)
    return out


def subtype_words(d: Defect) -> str:
    """A coating flaw's subtype ("pit") or plausible subtypes ("pit/stain"); "" when unknown."""
    if d.class_name != "coating_flaw":
        return ""
    return d.subtype or "/".join(d.possible_subtypes or ())


def _thumb_b64(image_bgr: np.ndarray, max_side: int = 320) -> str:
    h, w = image_bgr.shape[:2]
    s = max_side / max(h, w)
    if s < 1:
        image_bgr = cv2.resize(image_bgr, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return base64.b64encode(buf.tobytes()).decode("ascii")


@dataclass
class ReportEntry:
    result: InspectionResult
    overlays_bgr: Mapping[str, np.ndarray] = field(default_factory=dict)  # view -> overlay image
    truth_verdict: Verdict | None = None  # the true verdict, for synthetic parts
    source: str | None = None


def write_html_report(entries: Sequence[ReportEntry], path: str | Path, title: str = "magspect inspection") -> Path:
    """One self-contained HTML file: totals, then a card per part (thumbnails, verdict, reasons)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = Counter(e.result.verdict for e in entries)
    has_truth = any(e.truth_verdict is not None for e in entries)
    e = html.escape
    rows = [
        f"<tr><th>{v.value}</th><td style='color:{_VERDICT_CSS[v]}'>{counts.get(v, 0)}</td></tr>" for v in Verdict
    ]
    truth_html = ""
    if has_truth:
        judged = [x for x in entries if x.truth_verdict is not None]
        bad = [x for x in judged if x.truth_verdict != Verdict.PASS]
        good = [x for x in judged if x.truth_verdict == Verdict.PASS]
        escapes = sum(x.result.verdict == Verdict.PASS for x in bad)
        false_rej = sum(x.result.verdict == Verdict.REJECT for x in good)
        truth_html = (
            f"<p>Against the generator's truth: {len(bad)} nonconforming, {len(good)} conforming parts; "
            f"<b>{escapes}</b> escapes (nonconforming judged PASS), <b>{false_rej}</b> false rejects.</p>"
        )
    cards = []
    for x in entries:
        r = x.result
        imgs = "".join(
            f"<figure><img src='data:image/jpeg;base64,{_thumb_b64(img)}' alt='{e(v)} view'>"
            f"<figcaption>{e(v)}</figcaption></figure>"
            for v, img in x.overlays_bgr.items()
        )
        reasons = "".join(
            f"<li class='{rs.verdict.value.lower()}'>{e(rs.verdict.value)}: {e(rs.message)}</li>" for rs in r.reasons
        ) or "<li class='pass'>every rule met</li>"
        meas = "".join(
            f"<tr><td>{e(m.name)}</td><td>{'—' if m.value is None else f'{m.value:.3f}'}</td>"
            f"<td>{m.nominal:g} +{m.tol_plus:g}/-{m.tol_minus:g}</td><td>{e(m.status.value)}</td></tr>"
            for m in r.measurements.values()
        )
        truth = ""
        if x.truth_verdict is not None:
            agree = "agrees" if x.truth_verdict == r.verdict else "differs"
            truth = f"<p class='truth'>true verdict: {x.truth_verdict.value} ({agree})</p>"
        if r.dismissed:
            kinds = "; ".join(f"{d.view} {d.class_name.replace('_', ' ')}"
                              + (f" ({d.dismissed_because})" if d.dismissed_because else "") for d in r.dismissed)
            reasons += f"<li class='note'>{len(r.dismissed)} look-alike(s) dismissed, not judged: {e(kinds)}</li>"
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in r.timings_ms.items())
        cards.append(
            f"<section class='card'><h2>{e(r.part_id or x.source or '?')} "
            f"<span style='color:{_VERDICT_CSS[r.verdict]}'>{r.verdict.value}</span></h2>{truth}"
            f"<div class='imgs'>{imgs}</div><ul>{reasons}</ul>"
            f"<table class='meas'><tr><th>dimension</th><th>measured</th><th>drawing</th><th>status</th></tr>"
            f"{meas}</table><p class='small'>spec {e(r.spec.id if r.spec else '—')}"
            f" v{r.spec.version if r.spec else ''}; model {e(r.model.name if r.model else '—')}"
            f" {e(r.model.sha256[:12] if r.model else '')}; {e(stages)}</p></section>"
        )
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1.5em;color:#222}} table{{border-collapse:collapse}}
td,th{{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}} .card{{border:1px solid #ccc;
border-radius:6px;padding:0.6em 1em;margin:0.8em 0}} .imgs{{display:flex;gap:8px}} figure{{margin:0}}
img{{max-width:320px;border:1px solid #999}} li.reject{{color:#c62828}} li.review{{color:#b36b00}}
li.pass{{color:#2e7d32}} li.note{{color:#777}} .small{{font-size:80%;color:#666}} .truth{{font-style:italic}}
</style></head><body><h1>{e(title)}</h1><h2>Totals: {len(entries)} parts</h2>
<table>{''.join(rows)}</table>{truth_html}
<p class="small">Outlines: <span style="color:#ff2828">crack</span>, <span style="color:#ffa500">chip</span>,
<span style="color:#ff50ff">coating flaw</span>, <span style="color:#50c850">fitted part outline</span>.</p>
{''.join(cards)}</body></html>"""
    path.write_text(doc, encoding="utf-8")
    return path
