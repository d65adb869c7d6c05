"""MedSeg.py's Logic and self test (MedSegTest.runTest) on slicer-core, with the Slicer application's
Qt layer replaced by stand-ins: the full workflow against a real server on synthetic data.

In Slicer the self test starts ``medseg serve`` itself; here it is pointed at the ``live_server``
fixture (same server code, already imported) to keep CI fast."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MODULE_DIR = REPO / "MedSegExtension" / "MedSeg"

SCRIPT = """
import sys
sys.path[:0] = [{here!r}, {module!r}]
import slicer_app_standins
slicer_app_standins.install({tmp!r})
before = set(sys.modules)
import MedSeg
# MedSeg.py is loaded at Slicer start: requests / SimpleITK come later, installed on demand if missing
heavy = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in ("requests", "SimpleITK", "MedSegLib"))
assert heavy == [], heavy
print("LIGHT IMPORT OK")
test = MedSeg.MedSegTest()
test.runTest()
print("SELF TEST DONE")
"""


def test_medseg_self_test_runs_the_full_workflow(live_server, tmp_path):
    env = {**os.environ, "MEDSEG_TEST_SERVER": live_server.url}
    script = SCRIPT.format(here=str(HERE), module=str(MODULE_DIR), tmp=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=400)
    output = result.stdout + result.stderr[-3000:]
    assert result.returncode == 0, output
    assert "LIGHT IMPORT OK" in result.stdout and "SELF TEST DONE" in result.stdout
    for step in ("Auto on a local volume", "Include and exclude clicks", "Submit", "Train now", "3D plan and export",
                 "MedSeg workflow test passed"):
        assert step in result.stdout, output
