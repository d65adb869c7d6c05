"""``medseg synth``: write a cohort of synthetic abdominal CT phantoms."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def _triple(kind):
    def parse(text: str):
        parts = text.replace("x", ",").split(",")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"expected three values like 256,256,96 (got {text!r})")
        try:
            return tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected three numbers (got {text!r})") from None

    return parse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate synthetic contrast CT phantoms with labels and centerlines")
    p.add_argument("--out", required=True, type=Path, help="output folder (a studies folder)")
    p.add_argument("--cases", type=int, default=3, help="number of cases")
    p.add_argument("--seed", type=int, default=0, help="cohort seed (same seed, same cases)")
    p.add_argument("--shape", type=_triple(int), default=(256, 256, 96), help="voxels x,y,z (default 256,256,96)")
    p.add_argument("--spacing", type=_triple(float), default=(1.5, 1.5, 2.5), help="mm x,y,z")
    p.add_argument("--varied", action="store_true",
                   help="vary contrast phase, dose, body size and field of view per case (default: standard scans)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .cohort import make_cohort

    if args.cases < 1:
        raise ValueError("--cases must be at least 1")
    t0 = time.perf_counter()
    ids = make_cohort(args.out, args.cases, args.seed, args.shape, args.spacing, varied=args.varied)
    print(f"wrote {len(ids)} phantoms to {args.out} in {time.perf_counter() - t0:.1f} s: {', '.join(ids)}")
    return 0
