"""The ``medseg`` command: ``serve``, ``synth`` and the other tools register sub-commands here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def command_modules() -> list[str]:
    """Modules that add sub-commands: ``medseg_server/cli_*.py`` and ``medseg_server/<pkg>/cli.py``.

    Each has ``register(subparsers)`` and sets ``func`` on the parser it adds, so a new tool is
    one new file, with no central list to edit.
    """
    root = Path(__file__).parent
    names = [f"medseg_server.{p.stem}" for p in sorted(root.glob("cli_*.py"))]
    names += [f"medseg_server.{p.parent.name}.cli" for p in sorted(root.glob("*/cli.py"))]
    return names


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="medseg", description="MedSeg segmentation server and tools")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in command_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medseg`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"medseg {args.command}: error: {exc}", file=sys.stderr)
        return 2


def existing_dir(text: str) -> Path:
    """argparse type: a folder that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return path


if __name__ == "__main__":
    sys.exit(main())
