"""``medseg bench``: a dispatcher; each module of this package with ``register_bench(subparsers)`` adds one benchmark.

So ``bench learning`` or ``bench recon`` is a new file ``bench/learning.py`` with its own
``register_bench``: no list to edit here. ``bench all --out DIR`` (what ``make bench`` runs)
calls ``bench_all(out_dir)`` of every module that defines it.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from pathlib import Path

from . import __name__ as PACKAGE  # noqa: N812 - the package's dotted name
from . import __path__ as PACKAGE_PATH  # noqa: N812


def bench_modules() -> list[str]:
    """Dotted names of the benchmark modules (not this one, nor private ``_*`` implementation modules)."""
    return [
        f"{PACKAGE}.{m.name}" for m in pkgutil.iter_modules(PACKAGE_PATH) if m.name != "cli" and not m.name.startswith("_")
    ]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``medseg bench`` and, under it, every benchmark found."""
    parser = sub.add_parser("bench", help="run a benchmark (prints figures with a baseline; writes JSON)")
    bench_sub = parser.add_subparsers(dest="bench", required=True)
    every = bench_sub.add_parser("all", help="every benchmark with its default cases")
    every.add_argument("--out", type=Path, default=Path("bench-results"), help="folder for the result files")
    every.set_defaults(func=run_all)
    for name in bench_modules():
        module = importlib.import_module(name)
        hook = getattr(module, "register_bench", None)
        if callable(hook):
            hook(bench_sub)


def run_all(args: argparse.Namespace) -> int:
    """Run ``bench_all(out_dir)`` of every benchmark module; the worst exit code wins."""
    args.out.mkdir(parents=True, exist_ok=True)
    code = 0
    for name in bench_modules():
        hook = getattr(importlib.import_module(name), "bench_all", None)
        if callable(hook):
            code = max(code, int(hook(args.out) or 0))
    return code
