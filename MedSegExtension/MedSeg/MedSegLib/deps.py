"""Optional Python packages of the module: which are missing (Slicer installs them on request).

Nothing is installed at import time. ``MedSeg.py`` asks the user, then calls
``slicer.util.pip_install`` with the requirement strings returned by :func:`missing`.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(?:>=\s*([0-9][0-9A-Za-z.\-]*))?")


def read_requirements(path: Path) -> list[str]:
    """Requirement lines (``name>=x``) of a requirements file, comments dropped."""
    lines = (line.split("#", 1)[0].strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:4])


def missing(requirements: list[str]) -> list[str]:
    """The requirements not installed, or installed below their lower bound."""
    out = []
    for requirement in requirements:
        match = _REQUIREMENT.match(requirement)
        if not match:
            raise ValueError(f"cannot read requirement {requirement!r}")
        name, minimum = match.group(1), match.group(2)
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            out.append(requirement)
            continue
        if minimum and _version_tuple(installed) < _version_tuple(minimum):
            out.append(requirement)
    return out
