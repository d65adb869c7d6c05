"""Faults: SIGKILL in the middle of concurrent label writes, a full disk, a training worker killed.

The full HTTP crash soak (100 submissions from 8 clients, server SIGKILLed at random) is a
benchmark: ``medseg bench soak``. Here a small version kills a real writer process (the datastore
code the server runs, 4 threads writing at once) at random moments, without the server's slow
start-up.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import SimpleITK as sitk

from medseg_server.atomic import TMP_PREFIX
from medseg_server.bench.soak import partial_label_files
from medseg_server.datastore import LocalDatastore
from medseg_server.imageio import image_to_bytes, read_image_bytes
from testdata import make_ct

WRITER = r"""
import json, sys, threading
from pathlib import Path
import numpy as np, SimpleITK as sitk
from medseg_server.datastore import LocalDatastore

studies, image, jobs = Path(sys.argv[1]), sys.argv[2], [int(j) for j in sys.argv[3].split(",")]
ds = LocalDatastore(studies)
ref = ds.reference(image)
lock = threading.Lock()
print("READY", flush=True)

def work(mine):
    for job in mine:
        arr = (np.random.default_rng(job).random(sitk.GetArrayViewFromImage(ref).shape) < 0.4).astype(np.uint8)
        label = sitk.GetImageFromArray(arr * (1 + job % 5))
        label.CopyInformation(ref)
        v = ds.save_label_image(image, "crash", label, user="writer", info={"job": job})
        with lock:
            print(json.dumps({"job": job, "version": v.version, "checksum": v.checksum}), flush=True)

threads = [threading.Thread(target=work, args=(jobs[i::4],)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("DONE", flush=True)
"""


def _voxels(job: int, shape) -> bytes:
    arr = (np.random.default_rng(job).random(shape) < 0.4).astype(np.uint8)
    return (arr * (1 + job % 5)).astype(np.uint8).tobytes()


def test_sigkill_during_concurrent_label_writes_loses_no_acknowledged_label(studies: Path) -> None:
    rng = random.Random(7)
    jobs = list(range(40))
    acks: dict[int, dict] = {}
    kills = partial = 0
    for _ in range(20):
        todo = [j for j in jobs if j not in acks]
        if not todo:
            break
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(studies), "case_000", ",".join(map(str, todo))],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "READY"
        lines: list[str] = []
        reader = threading.Thread(target=lambda p=proc, out=lines: out.extend(iter(p.stdout.readline, "")), daemon=True)
        reader.start()
        # let each round acknowledge at least one label (progress even on a loaded machine), then
        # kill at a random moment of the following writes
        deadline = time.monotonic() + 60
        while not any(line.startswith("{") for line in list(lines)) and proc.poll() is None:
            assert time.monotonic() < deadline, "writer acknowledged nothing in 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.12))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait(30)
        reader.join(10)
        found_partial, _ = partial_label_files(studies)  # before anything recovers the folder
        partial += found_partial
        for line in lines:
            if line.startswith("{"):
                ack = json.loads(line)
                acks[ack["job"]] = ack
    assert kills >= 3
    assert len(acks) == len(jobs)
    store = LocalDatastore(studies)  # start-up recovery, as the server does it
    assert store.verify() == []
    assert partial_label_files(studies) == (0, 0)
    shape = sitk.GetArrayViewFromImage(store.reference("case_000")).shape
    intact = 0
    for job, ack in acks.items():
        version = store.get_label("case_000", "crash", ack["version"])
        assert version.checksum == ack["checksum"] and version.info["job"] == job
        data = version.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == ack["checksum"]
        assert sitk.GetArrayFromImage(read_image_bytes(data, version.path.name)).tobytes() == _voxels(job, shape)
        intact += 1
    print(f"\ncrash test: {kills} SIGKILLs, {len(acks)} acknowledged, {intact} found intact, "
          f"{partial} partial label files seen after kills")
    assert partial == 0 and intact == len(jobs)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 3 MiB filesystem (tmpfs), so that writes really fail with ENOSPC."""
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"mounting a small tmpfs for the disk-full test needs root: {done.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\xff" * 65536)
        except OSError:
            pass
        try:
            while True:
                fh.write(b"\xff" * 512)
        except OSError:
            pass
    return filler


def test_disk_full_answers_507_and_keeps_the_old_version(small_disk: Path, server_factory) -> None:
    studies = small_disk / "studies"
    studies.mkdir()
    image, label = make_ct(seed=0)
    sitk.WriteImage(image, str(studies / "case_000.nii.gz"), True)
    live = server_factory(studies)
    put = dict(params={"image": "case_000"}, timeout=60)
    first = requests.put(f"{live.url}/datastore/label", files={"label": ("l.nii.gz", image_to_bytes(label))}, **put)
    assert first.status_code == 200, first.text
    noisy = sitk.GetImageFromArray(np.random.default_rng(1).integers(0, 6, label.GetSize()[::-1]).astype(np.uint8))
    noisy.CopyInformation(label)
    filler = _fill(small_disk)
    full = requests.put(f"{live.url}/datastore/label", files={"label": ("l.nii.gz", image_to_bytes(noisy))}, **put)
    assert full.status_code == 507, full.text
    assert "insufficient storage" in full.json()["detail"]
    kept = requests.get(f"{live.url}/datastore/label", params={"image": "case_000"}, timeout=30)
    assert hashlib.sha256(kept.content).hexdigest() == first.json()["checksum"]
    versions = requests.get(f"{live.url}/datastore/label/versions", params={"image": "case_000"}, timeout=30).json()
    assert [v["version"] for v in versions] == [1]
    assert not [f for f in studies.rglob(f"{TMP_PREFIX}*")]  # the failed write left nothing behind
    assert requests.get(f"{live.url}/info/", timeout=30).status_code == 200
    filler.unlink()
    again = requests.put(f"{live.url}/datastore/label", files={"label": ("l.nii.gz", image_to_bytes(noisy))}, **put)
    assert again.status_code == 200 and again.json()["version"] == 2


def test_killed_training_worker_never_takes_the_api_down(live_server, client) -> None:
    from testjobs import Sleeper

    live_server.ctx.trainers["sleeper"] = Sleeper()
    started = requests.post(f"{live_server.url}/train/sleeper", json={}, timeout=30)
    assert started.status_code == 200, started.text
    runner = live_server.ctx.train_runner
    deadline = time.monotonic() + 60
    while not runner.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(runner._proc.pid, signal.SIGKILL)  # the OOM killer takes the worker
    assert runner.wait(30)
    status = requests.get(f"{live_server.url}/train/", timeout=30).json()
    assert status["status"] == "ERROR" and "-9" in status["error"]
    # the API keeps answering: info, inference, a new training
    assert requests.get(f"{live_server.url}/info/", timeout=30).status_code == 200
    inferred = requests.post(f"{live_server.url}/infer/threshold_liver", params={"image": "case_000", "output": "json"},
                             timeout=120)
    assert inferred.status_code == 200, inferred.text
    assert requests.post(f"{live_server.url}/train/threshold_liver", json={}, timeout=30).status_code in (200, 404)
