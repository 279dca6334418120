"""Two or more ``magspect evaluate --json`` results side by side: the figures a candidate model is
judged by, and which parts changed.

    .venv/bin/python benchmarks/compare_evals.py BASELINE.json CANDIDATE.json [MORE.json ...]

Prints one markdown table (escape rate, false rejects, reviews with their part counts; rejectable
defects found per class, per kind where the files hold it, and pooled; false defects on nuisances
per 100 parts; the model's sha256),
then, for each file after the first, the parts it lets pass or falsely rejects that the first does
not, and the reverse (and those it sends to REVIEW, where both files list them: `reviewed_parts`).
The files must be evaluations of the same parts (suite, split and part count are checked).
numpy-free; the standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CLASSES = ("crack", "chip", "coating_flaw")


def found(ev: dict, cls: str) -> tuple[int, int]:
    """(found, total) rejectable defects of ``cls`` (at or above the spec's limit)."""
    r = ev["defect_recall"].get(cls, {}).get("at_or_above_limit", {})
    n = int(r.get("n") or 0)
    return (round(r["recall"] * n) if n and r.get("recall") is not None else 0), n


def found_kind(ev: dict, kind: str) -> str:
    """"F of N" rejectable defects of ``kind`` ("crack/face_crack") found, or "-" where ``ev`` has none."""
    r = ev.get("rejectable_recall_by_kind", {}).get(kind)
    return f"{round(r['recall'] * r['n'])} of {r['n']}" if r else "-"


def check_same_parts(evs: dict[str, dict]) -> None:
    keys = {(e["suite"], e["split"], e["n_parts"], e["n_nonconforming"]) for e in evs.values()}
    if len(keys) != 1:
        raise ValueError(f"not evaluations of the same parts: {sorted(keys)}")


def table(evs: dict[str, dict]) -> str:
    names = list(evs)
    out = ["| figure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]

    def row(label: str, cell) -> None:  # noqa: ANN001
        out.append(f"| {label} | " + " | ".join(cell(evs[n]) for n in names) + " |")

    row("escape rate", lambda e: f"{100 * e['escape_rate']:.2f} % ({len(e['escaped_parts'])})")
    row("false rejects", lambda e: f"{100 * e['false_reject_rate']:.2f} % ({len(e['false_rejected_parts'])} "
                                   f"of {e['n_conforming']})")
    row("reviews", lambda e: f"{100 * e['review_rate']:.2f} %")
    for c in CLASSES:
        row(f"rejectable {c} found", lambda e, c=c: "{} of {}".format(*found(e, c)))
    kinds = sorted({k for e in evs.values() for k in e.get("rejectable_recall_by_kind", {})})
    for k in kinds:  # evaluations since the twenty-second session hold them; "-" where one does not
        row(f"rejectable {k} found", lambda e, k=k: found_kind(e, k))
    row("rejectable found, all classes", lambda e: "{} of {}".format(*map(sum, zip(*(found(e, c) for c in CLASSES),
                                                                                   strict=True))))
    row("false defects on nuisances per 100 parts", lambda e: f"{e['false_defects_on_nuisances_per_100_parts']:.1f}")
    row("model sha256", lambda e: (e.get("model") or {}).get("sha256", "?")[:12])
    return "\n".join(out)


def part_changes(base: dict, other: dict) -> dict[str, list[str]]:
    """Parts whose outcome differs: newly escaped / no longer escaped, newly / no longer falsely rejected."""
    be, oe = set(base["escaped_parts"]), set(other["escaped_parts"])
    bf, of = set(base["false_rejected_parts"]), set(other["false_rejected_parts"])
    out = {"escapes added": sorted(oe - be), "escapes removed": sorted(be - oe),
           "false rejects added": sorted(of - bf), "false rejects removed": sorted(bf - of)}
    if "reviewed_parts" in base and "reviewed_parts" in other:  # evaluations since the nineteenth session
        br, orv = set(base["reviewed_parts"]), set(other["reviewed_parts"])
        out |= {"reviews added": sorted(orv - br), "reviews removed": sorted(br - orv)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path, help="evaluate --json files; the first is the baseline")
    args = ap.parse_args()
    if len(args.files) < 2:
        ap.error("give a baseline and at least one evaluation to compare with it")
    evs = {}
    for f in args.files:
        try:
            evs[str(f)] = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            sys.exit(f"error: {f}: {exc}")
    try:
        check_same_parts(evs)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    print(table(evs))
    base = evs[str(args.files[0])]
    for name in list(evs)[1:]:
        print(f"\n{name} against {args.files[0]}:")
        for what, parts in part_changes(base, evs[name]).items():
            print(f"  {what} ({len(parts)}): {' '.join(parts) if parts else '-'}")


if __name__ == "__main__":
    main()
