"""The ``medseg`` command as a user runs it: synth, prepare-cohort, serve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
import SimpleITK as sitk

from livetools import free_port

MEDSEG = [sys.executable, "-m", "medseg_server.cli"]


def test_synth_writes_a_deterministic_cohort(tmp_path: Path) -> None:
    args = ["synth", "--cases", "2", "--seed", "3", "--shape", "64,64,24", "--spacing", "3,3,5"]
    for out in ("a", "b"):
        done = subprocess.run([*MEDSEG, *args, "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    for case in ("synth_000", "synth_001"):
        a = sitk.ReadImage(str(tmp_path / "a" / f"{case}.nii.gz"))
        b = sitk.ReadImage(str(tmp_path / "b" / f"{case}.nii.gz"))
        assert a.GetSize() == (64, 64, 24)
        assert sitk.GetArrayFromImage(a).tobytes() == sitk.GetArrayFromImage(b).tobytes()
        assert (tmp_path / "a" / "ground_truth" / f"{case}.centerlines.json").exists()


def test_synth_rejects_bad_arguments(tmp_path: Path) -> None:
    done = subprocess.run([*MEDSEG, "synth", "--out", str(tmp_path), "--shape", "64,64"], capture_output=True, text=True)
    assert done.returncode == 2 and "three values" in done.stderr
    done = subprocess.run([*MEDSEG, "synth", "--out", str(tmp_path), "--cases", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and "at least 1" in done.stderr


def test_serve_starts_and_answers_info(studies: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*MEDSEG, "serve", "--studies", str(studies), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                info = requests.get(f"http://127.0.0.1:{port}/info/", timeout=2).json()
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert info["datastore"]["total"] == 3 and "threshold_liver" in info["models"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode in (0, -signal.SIGINT)


def test_prepare_cohort_adds_real_sample_with_notice(tmp_path: Path) -> None:
    env = dict(os.environ)
    done = subprocess.run([*MEDSEG, "prepare-cohort", "--out", str(tmp_path), "--cases", "0"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "totalseg_example.nii.gz").exists()
    assert (tmp_path / "ground_truth" / "NOTICE-totalseg.md").exists()
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "ground_truth" / "totalseg_example.label.nii.gz")))
    assert set(int(v) for v in set(truth.ravel().tolist())) <= {0, 1, 2, 4}
    assert (truth == 1).sum() > 10000  # the liver is there
