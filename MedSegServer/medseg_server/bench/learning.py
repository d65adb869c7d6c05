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


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``bench learning``."""
    p = sub.add_parser("learning", help="active learning vs random: test Dice per labelled case (PNG + JSON)")
    p.add_argument("--cohort", type=Path, required=True, help="cohort folder (made with --make N if empty)")
    p.add_argument("--out", type=Path, required=True, help="result JSON")
    p.add_argument("--plot", type=Path, help="PNG (default: RESULT.png)")
    p.add_argument("--make", type=int, default=20, help="phantoms to generate when the cohort is empty")
    p.add_argument("--strategies", type=lambda s: [x for x in s.split(",") if x], default=["random", "mc_dropout"],
                   help="comma list from random, mc_dropout, tta; 'random' is the baseline and is required")
    p.add_argument("--test", type=int, default=5, help="held-out test cases")
    p.add_argument("--initial", type=int, default=2, help="labelled cases before the first round")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--per-round", type=int, default=1, help="cases labelled per round")
    p.add_argument("--iterations-initial", type=int, default=200)
    p.add_argument("--iterations-per-round", type=int, default=60)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--lr-finetune", type=float, default=1e-3)
    p.add_argument("--samples", type=int, default=3, help="MC-dropout / TTA samples per pool case")
    p.add_argument("--network", default="unet_small")
    p.add_argument("--noise", type=float, default=0.02, help="Dice drop tolerated by the monotonicity check")
    p.add_argument("--threads", type=int, default=1, help="torch threads (more than the free cores is much slower)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_run)


def bench_all(out_dir: Path) -> int:
    """``make bench``: a small simulation (12 phantoms, 4 test cases, 5 rounds), random vs MC-dropout."""
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers())
    args = parser.parse_args([
        "learning", "--cohort", str(out_dir / "learning-cohort"), "--out", str(out_dir / "learning.json"),
        "--make", "12", "--test", "4", "--rounds", "5",
    ])
    return _run(args)
