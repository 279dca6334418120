"""How long the Inspector measures chips: against their true length, on the truth masks or part by part.

Two modes:

- default: the chip length a *perfect* segmenter would give. Parts of the split with a chip forced on
  each, the back-lit silhouette measured (`measure_view`), and `measure_defects` run on the
  generator's own class mask: what is left of the error is the measurement's, not the model's.

      .venv/bin/python benchmarks/bench_chip_length.py --split val --n 150 --lighting darkfield

- ``--part SPEC-sSEED ...``: each part inspected as the suite images it (``--lighting``, ``--verifier``
  as ``magspect evaluate`` takes them), its true chips beside the chips reported and dismissed, with
  their lengths and verifier scores. Run it on an earlier tree (``PYTHONPATH=/tmp/old/src``) to see a
  change's effect part by part.

      .venv/bin/python benchmarks/bench_chip_length.py --split test --lighting darkfield --verifier darkfield \\
          --part def-blk-20x10x5-nicuni-s2000471 def-blk-20x10x5-nicuni-s2000316
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="magsynth-v2")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=150, help="default mode: the split's first N parts")
    ap.add_argument("--lighting", default=None, help="coaxial, dome or darkfield (default: the suite's draw)")
    ap.add_argument("--verifier", default=None, help="--part mode: 'darkfield' or a file (default: the bundled)")
    ap.add_argument("--part", nargs="+", default=None, metavar="SPEC-sSEED", help="inspect these parts")
    args = ap.parse_args()

    import numpy as np

    from magspect.datasets import generate_part, get_suite

    suite = get_suite(args.suite)
    if args.part:
        from magspect.inspect.inspector import Inspector
        from magspect.inspect.verifier import bundled_verifier_path

        verifier = bundled_verifier_path("darkfield") if args.verifier == "darkfield" else args.verifier
        insp = Inspector(verifier=verifier)
        cfg = suite.config(args.split, light=args.lighting, backlight=True)
        for name in args.part:
            spec_id, seed = name.rsplit("-s", 1)
            p = generate_part(spec_id, int(seed), cfg)
            r = insp.inspect({v: rv.image for v, rv in p.views.items()}, spec=spec_id,
                             um_per_px={v: float(rv.truth["um_per_px"]) for v, rv in p.views.items()},
                             backlights={v: rv.backlight for v, rv in p.views.items()})
            print(f"{name}: {r.verdict.value}")
            for v, rv in p.views.items():
                for d in rv.truth["defects"]:
                    if d["class_name"] == "chip":
                        print(f"  true {v} {d['subtype']} {d['length_mm']:.2f} mm long, {d['depth_mm']:.2f} deep, "
                              f"box {[int(x) for x in d['bbox_xyxy_px']]}")
            for kind, ds in (("reported", r.defects), ("dismissed", r.dismissed)):
                for d in ds:
                    if d.class_name == "chip":
                        score = "" if d.verifier_score is None else f", verifier {d.verifier_score:.3f}"
                        print(f"  {kind} {d.view} {d.zone} {d.length_mm:.2f} mm long, {d.depth_mm or 0:.2f} deep, "
                              f"box {[int(x) for x in d.bbox_xyxy_px]}{score}")
            for reason in r.reasons:
                print(f"    {reason.verdict.value}: {reason.message}")
        return

    from _truth_mask import on_truth_mask

    cfg = suite.config(args.split, light=args.lighting, backlight=True, force_defect="chip")
    err: dict[str, list[float]] = {"edge_chip": [], "corner_chip": []}
    for spec_id, seed in suite.parts(args.split, args.n):
        p = generate_part(spec_id, seed, cfg)
        for v, rv in p.views.items():
            chips, got = on_truth_mask(rv, spec_id, v, "chip")
            for c in chips:
                b = c["bbox_xyxy_px"]
                near = [g for g in got if not (g.bbox_xyxy_px[2] + 3 < b[0] or b[2] + 3 < g.bbox_xyxy_px[0]
                                               or g.bbox_xyxy_px[3] + 3 < b[1] or b[3] + 3 < g.bbox_xyxy_px[1])]
                if near:
                    err[c["subtype"]].append(max(g.length_mm for g in near) - c["length_mm"])
    print(f"{args.n} parts of {args.suite}/{args.split}, a chip forced on each, lighting "
          f"{args.lighting or 'suite'}; measured on the truth class mask")
    print("| chips | n | length error median mm | 10 % | 90 % |")
    print("|---|---|---|---|---|")
    for sub, xs in err.items():
        if xs:
            q = np.percentile(xs, [50, 10, 90])
            print(f"| {sub} | {len(xs)} | {q[0]:+.3f} | {q[1]:+.3f} | {q[2]:+.3f} |")


if __name__ == "__main__":
    main()
