"""Named, versioned synthetic splits. ``magsynth-v1`` never changes; a new recipe gets a new name.

magsynth-v1
    specs: every bundled spec, one drawn per part from its seed.
    train: seeds 0 .. 999_999 (stream as many as you need, in order).
    val: seeds 1_000_000 .. 1_001_999.
    test: seeds 2_000_000 .. 2_000_999 (1,000 parts, both views; 486 of them nonconforming as
    measured when the recipe was frozen, 47 % with defects; defect rate 0.48, out-of-tolerance rate 0.12).
    Regenerate the test set: ``magspect synth --suite magsynth-v1 --split test --out DIR``.
    Lighting: each view's lighting is drawn from all four, back light included (15 %), so about
    28 % of its parts have a view that shows only a silhouette: no surface inspection is possible
    there (the Inspector says REVIEW), and its surface defects are invisible.

magsynth-v2
    magsynth-v1's parts, seeds, specs and rates, imaged as an inspection station images them: each
    view front-lit (coaxial, dome or dark-field, drawn with v1's weights) plus a back-lit companion
    image of the same view for metrology. The suite the runtime's targets were measured on until the
    twenty-second session. ``magspect synth --suite magsynth-v2 --split test --out DIR``.

magsynth-v3
    magsynth-v2's seeds, specs, rates and station lighting with the face-crack fix: v1 and v2 moved
    every face crack's start to the outline, so each ran from an edge, and one that headed outwards
    ended after a few steps (8 of the 34 face cracks of the test split are
    under 0.4 mm, the shortest 0.05 mm: 2 px). v3's face cracks start on the face, where they were
    drawn. 959 of the 1,000 test parts are drawn exactly as in v2; the other 41 hold a face crack in
    one suite or the other (v2 dropped a face crack whose walk ended at once and drew another defect).
    The suite the runtime's targets are measured on. ``magspect synth --suite magsynth-v3 --split test
    --out DIR``; ``benchmarks/bench_crack_lengths.py --suite magsynth-v2 magsynth-v3`` compares them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from magspect.datasets._config import FRONT_LIGHTINGS, SynthConfig
from magspect.datasets._generate import SynthPart, generate_part
from magspect.datasets._writer import spec_for_seed

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SynthSuite:
    name: str
    version: int
    spec_ids: tuple[str, ...]
    seed_ranges: dict[str, tuple[int, int]]  # split -> [start, stop)
    configs: dict[str, SynthConfig]

    def seeds(self, split: str) -> range:
        if split not in self.seed_ranges:
            raise KeyError(f"{self.name} has splits {', '.join(self.seed_ranges)}; not {split!r}")
        return range(*self.seed_ranges[split])

    def parts(self, split: str, limit: int | None = None) -> list[tuple[str, int]]:
        """(spec_id, seed) of every part of ``split`` (the first ``limit`` ones if given)."""
        seeds = self.seeds(split)
        if limit is not None:
            seeds = seeds[:limit]
        return [(spec_for_seed(s, self.spec_ids), s) for s in seeds]

    def config(self, split: str, *, light: str | None = None, **changes: object) -> SynthConfig:
        """The split's generator config, with ``changes``. ``light``: every view under this one front
        light instead of the suite's draw; a one-light choice takes the same random draw as the
        suite's, so the parts (poses, defects, texture, look-alikes) stay the same and only their
        light changes (and the glints and fixture shadow drawn after it)."""
        self.seeds(split)
        if light is not None:
            if light not in FRONT_LIGHTINGS:
                raise ValueError(f"light must be a front light that shows the surface, one of "
                                 f"{', '.join(FRONT_LIGHTINGS)}; got {light!r}")
            changes["lighting"] = (light,)
        return self.configs[split].with_(**changes) if changes else self.configs[split]

    def iter_parts(self, split: str, limit: int | None = None, **changes: object) -> Iterator[SynthPart]:
        cfg = self.config(split, **changes)
        for spec_id, seed in self.parts(split, limit):
            yield generate_part(spec_id, seed, cfg)


_BUNDLED = (
    "com-blk-20x10x5-zn", "com-ring-od20-id10-t5", "def-blk-20x10x5-nicuni", "def-disc-d10-t3-nicuni",
    "ev-arc-r30-r25-40deg",
)

# v1 and v2 keep the generator they were frozen with: face cracks started at the outline.
_V1_TRAIN = SynthConfig(defect_rate=0.6, out_of_tolerance_rate=0.1, face_cracks_on_face=False)

magsynth_v1 = SynthSuite(
    name="magsynth-v1",
    version=1,
    spec_ids=_BUNDLED,
    seed_ranges={"train": (0, 1_000_000), "val": (1_000_000, 1_002_000), "test": (2_000_000, 2_001_000)},
    configs={"train": _V1_TRAIN, "val": _V1_TRAIN,
             "test": SynthConfig(defect_rate=0.48, out_of_tolerance_rate=0.12, face_cracks_on_face=False)},
)

magsynth_v2 = SynthSuite(
    name="magsynth-v2",
    version=2,
    spec_ids=_BUNDLED,
    seed_ranges=dict(magsynth_v1.seed_ranges),
    configs={k: c.with_(lighting=FRONT_LIGHTINGS, backlight=True) for k, c in magsynth_v1.configs.items()},
)

magsynth_v3 = SynthSuite(
    name="magsynth-v3",
    version=3,
    spec_ids=_BUNDLED,
    seed_ranges=dict(magsynth_v2.seed_ranges),
    configs={k: c.with_(face_cracks_on_face=True) for k, c in magsynth_v2.configs.items()},
)

SUITES: dict[str, SynthSuite] = {s.name: s for s in (magsynth_v1, magsynth_v2, magsynth_v3)}


def get_suite(name: str) -> SynthSuite:
    try:
        return SUITES[name]
    except KeyError:
        raise KeyError(f"unknown suite {name!r}; known: {', '.join(SUITES)}") from None
