"""MedSegLib's core must run without Slicer and Qt: it is imported here with both blocked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parents[2] / "MedSegExtension" / "MedSeg"
CORE_MODULES = [
    "MedSegLib", "MedSegLib.client", "MedSegLib.errors", "MedSegLib.multipart", "MedSegLib.labels",
    "MedSegLib.geometry", "MedSegLib.interactions", "MedSegLib.jobs", "MedSegLib.workflow",
    "MedSegLib.recon", "MedSegLib.deps", "MedSegLib.synthetic",
]

BLOCKER = """
import importlib.abc, sys
BLOCKED = {"slicer", "qt", "ctk", "PythonQt", "slicer_core", "vtkmodules", "vtk"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked import of {name}")
        return None
sys.meta_path.insert(0, Block())
sys.path.insert(0, %r)
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
assert not leaked, leaked
print("ok")
"""


def _run(modules: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER % str(MODULE_DIR), *modules], capture_output=True, text=True, timeout=120
    )


def test_core_imports_neither_slicer_nor_qt():
    result = _run(CORE_MODULES)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_core_module_is_checked():
    """A new core module must be added to CORE_MODULES (the mrml sub-package is the only exception)."""
    present = {
        "MedSegLib." + p.stem for p in (MODULE_DIR / "MedSegLib").glob("*.py") if p.stem != "__init__"
    } | {"MedSegLib"}
    assert present == set(CORE_MODULES)


def test_the_blocker_catches_a_slicer_import():
    """The check above can fail: the MRML layer does import slicer."""
    result = _run(["MedSegLib.mrml.volumes"])
    assert result.returncode != 0
    assert "blocked import of" in result.stderr
