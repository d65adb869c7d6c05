"""``medseg bench learning``: does active learning reach a given Dice with fewer labelled cases?

The simulation lives in ``_learning_impl`` and is imported only when the benchmark runs, so
the ``medseg`` command starts without loading torch.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from ._learning_impl import checked_run

    return checked_run(args)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``bench learning``."""
    p = sub.add_parser("learning", help="active learning vs random: test Dice per labelled case over seeds (PNG + JSON + MD)")
    p.add_argument("--cohort", type=Path, required=True, help="cohort folder (made with --make N if empty)")
    p.add_argument("--out", type=Path, required=True, help="result JSON (a .md summary and .png plot beside it)")
    p.add_argument("--plot", type=Path, help="PNG (default: RESULT.png)")
    p.add_argument("--make", type=int, default=36, help="phantoms to generate when the cohort is empty")
    p.add_argument("--uniform", dest="varied", action="store_false",
                   help="generate standard portal-venous phantoms only (default: varied phase, dose, size, FOV)")
    p.add_argument("--cohort-seed", type=int, default=0, help="seed of the generated cohort and of the test split")
    p.add_argument("--strategies", type=lambda s: [x for x in s.split(",") if x], default=["random", "mc_dropout", "mc_dropout_dice"],
                   help="comma list from random, mc_dropout, tta, mc_dropout_diverse (most uncertain third, then the "
                        "case least like the labelled ones), mc_dropout_classes / mc_dropout_dice (class-balanced "
                        "entropy / expected Dice error over the --classes); 'random' is the baseline and is required")
    p.add_argument("--seeds", type=_ints, default=[0, 1, 2, 3, 4],
                   help="comma list of seeds (random order, initial cases, training randomness); curves are averaged")
    p.add_argument("--scenario", choices=("skewed", "random"), default="skewed",
                   help="skewed: pool mostly portal venous (--pool-phases), test balanced over phases "
                        "(--test-per-phase); random: --test random cases of a --make cohort")
    p.add_argument("--pool-phases", type=_ints, default=[4, 4, 20],
                   help="skewed pool: non-contrast, arterial, portal-venous case counts")
    p.add_argument("--test-per-phase", type=int, default=4, help="skewed: held-out test cases of every phase")
    p.add_argument("--test", type=int, default=8, help="random scenario: held-out test cases (the same for every seed)")
    p.add_argument("--start", choices=("starter", "scratch"), default="scratch",
                   help="round-0 model: the shipped starter weights, or trained from scratch on --initial cases")
    p.add_argument("--starter", type=Path, default=None, help="starter bundle folder (default: the shipped one)")
    p.add_argument("--initial", type=int, default=2, help="labelled cases before the first round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--per-round", type=int, default=2, help="cases labelled per round")
    p.add_argument("--iterations-initial", type=int, default=300, help="from-scratch training of the start model")
    p.add_argument("--iterations-per-round", type=int, default=150, help="fine-tuning iterations per round (warm start)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-finetune", type=float, default=2e-3)
    p.add_argument("--samples", type=int, default=2, help="MC-dropout / TTA samples per pool case")
    p.add_argument("--candidates", type=int, default=0,
                   help="pool cases scored per round (a random subset, 0 = all) to bound the scoring time")
    p.add_argument("--network", default="unet_small", help="network of a from-scratch start model")
    p.add_argument("--spacing", type=float, default=6.0, help="network grid (mm) of a from-scratch model")
    p.add_argument("--patch", type=_ints, default=[32, 32, 32], help="training patch (z,y,x voxels), from scratch")
    p.add_argument("--classes", type=lambda s: [x for x in s.split(",") if x], default=["liver", "ivc"],
                   help="classes of the reported Dice (all classes are trained and listed per class)")
    p.add_argument("--average", type=float, default=0.4,
                   help="average the weights over this last fraction of every round's iterations (0 = last weights)")
    p.add_argument("--noise", type=float, default=0.01, help="floor of the Dice drop tolerated by the monotonicity check")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (each runs one seed x strategy)")
    p.set_defaults(func=_run)


def bench_all(out_dir: Path) -> int:
    """``make bench``: skewed scenario (pool 20 portal-venous / 4 arterial / 4 non-contrast, test 4 per phase),
    5 seeds, random vs MC-dropout vs its class-balanced expected Dice error over the whole pool, from scratch on a 6 mm grid, 4 rounds of 2 cases
    (about 40 minutes on 2 busy cores)."""
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers())
    args = parser.parse_args(["learning", "--cohort", str(out_dir / "learning-cohort-skewed"),
                              "--out", str(out_dir / "learning.json")])
    return _run(args)
