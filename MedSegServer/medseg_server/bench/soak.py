"""``medseg bench soak``: crash safety of label submissions under SIGKILL.

Several clients submit labels concurrently while the server process is killed with SIGKILL at
random moments and restarted. Afterwards every acknowledged submission (HTTP 200) must be present
and intact (its checksum and its voxels), no label file may be partial, and the index must be
consistent (``LocalDatastore.verify``). Figures: submissions acknowledged vs found intact, kills,
restarts, retries; the baseline is the same run's throughput without kills.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests
import SimpleITK as sitk

SHAPE_ZYX = (16, 32, 32)
IMAGES = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_studies(folder: Path, images: int = IMAGES) -> list[str]:
    """A studies folder with small CT-like volumes; returns their IDs."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(images):
        rng = np.random.default_rng(i)
        ct = sitk.GetImageFromArray(rng.normal(40, 20, SHAPE_ZYX).astype(np.int16))
        ct.SetSpacing((1.0, 1.0, 2.0))
        image_id = f"soak_{i:02d}"
        sitk.WriteImage(ct, str(folder / f"{image_id}.nii.gz"), True)
        ids.append(image_id)
    return ids


def label_for(job: int) -> tuple[bytes, str]:
    """A unique label for submission ``job`` (NIfTI bytes) and the SHA-256 of its voxels."""
    rng = np.random.default_rng(10_000 + job)
    arr = ((rng.random(SHAPE_ZYX) < 0.3) * rng.integers(1, 6)).astype(np.uint8)
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((1.0, 1.0, 2.0))
    from ..imageio import image_to_bytes

    return image_to_bytes(image, ".nii.gz"), hashlib.sha256(arr.tobytes()).hexdigest()


class ServerProcess:
    """``medseg serve`` in a child process that can be SIGKILLed and restarted on the same port."""

    def __init__(self, studies: Path, port: int, log: Path) -> None:
        self.studies, self.port, self.log = studies, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 120.0) -> float:
        """Start and wait until it answers; returns the start-up time in seconds."""
        t0 = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "medseg_server.cli", "serve", "--studies", str(self.studies),
                 "--port", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT,
            )
        self.starts += 1
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
            try:
                if requests.get(f"{self.url}/info/", timeout=2).status_code == 200:
                    return time.monotonic() - t0
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start within {timeout:.0f} s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, as a power cut or the OOM killer would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """Polite stop."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class SoakResult:
    """Figures of one soak run."""

    submissions: int
    clients: int
    acknowledged: int = 0
    found_intact: int = 0
    missing: list[dict] = field(default_factory=list)
    corrupt: list[dict] = field(default_factory=list)
    partial_files: int = 0
    temporaries_after_kill: int = 0
    unacknowledged_but_stored: int = 0
    kills: int = 0
    restarts: int = 0
    retries: int = 0
    index_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    baseline_per_s: float = 0.0
    per_s: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.acknowledged == self.found_intact and not self.missing and not self.corrupt
                and self.partial_files == 0 and not self.index_problems)

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "ok": self.ok}


def _submit_all(server: ServerProcess, jobs: list[int], images: list[str], clients: int,
                acks: list[dict], stop_at: float) -> int:
    """Submit every job (retrying on connection loss / 5xx); returns the number of retries."""
    todo: queue.Queue[int] = queue.Queue()
    for job in jobs:
        todo.put(job)
    retries = [0]
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop_at:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            data, voxels = label_for(job)
            image = images[job % len(images)]
            try:
                r = session.put(f"{server.url}/datastore/label", params={"image": image, "tag": "soak"},
                                data={"params": json.dumps({"client_id": f"client-{job % clients}", "job": job})},
                                files={"label": ("label.nii.gz", data)}, timeout=30)
            except requests.RequestException:
                r = None
            if r is not None and r.status_code == 200:
                body = r.json()
                with lock:
                    acks.append({"job": job, "image": image, "tag": "soak", "version": body["version"],
                                 "checksum": body["checksum"], "voxels": voxels})
                continue
            if r is not None and 400 <= r.status_code < 500:
                raise RuntimeError(f"submission {job} refused: {r.status_code} {r.text[:200]}")
            with lock:
                retries[0] += 1
            todo.put(job)
            time.sleep(0.25)  # the server is restarting

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not todo.empty():
        raise RuntimeError("soak timed out before every submission was acknowledged")
    return retries[0]


def partial_label_files(studies: Path) -> tuple[int, int]:
    """(partial label files, temporary files) found on disk right after a SIGKILL."""
    from ..atomic import TMP_PREFIX
    from ..imageio import ImageError, read_image_bytes

    partial = temps = 0
    for f in (studies / "labels").rglob("*"):
        if not f.is_file():
            continue
        if f.name.startswith(TMP_PREFIX):
            temps += 1
            continue
        try:
            read_image_bytes(f.read_bytes(), f.name)
        except ImageError:
            partial += 1
    return partial, temps


def _verify(server: ServerProcess, studies: Path, acks: list[dict], result: SoakResult) -> None:
    session = requests.Session()
    for ack in acks:
        r = session.get(f"{server.url}/datastore/label",
                        params={"image": ack["image"], "tag": ack["tag"], "version": ack["version"]}, timeout=30)
        if r.status_code != 200:
            result.missing.append(ack)
            continue
        if hashlib.sha256(r.content).hexdigest() != ack["checksum"]:
            result.corrupt.append(ack)
            continue
        from ..imageio import read_image_bytes

        arr = sitk.GetArrayFromImage(read_image_bytes(r.content, "l.nii.gz")).astype(np.uint8)
        if hashlib.sha256(arr.tobytes()).hexdigest() != ack["voxels"]:
            result.corrupt.append(ack)
            continue
        result.found_intact += 1


def run_soak(workdir: Path, submissions: int = 100, clients: int = 8, kill_every: tuple[float, float] = (0.3, 1.5),
             seed: int = 0, timeout_s: float = 600.0, baseline: bool = True) -> SoakResult:
    """Run the soak in ``workdir`` (a fresh studies folder is made there)."""
    rng = random.Random(seed)
    result = SoakResult(submissions, clients)
    if baseline:  # same submissions without kills: throughput to compare with
        base_dir = workdir / "baseline"
        base_images = make_studies(base_dir / "studies")
        base = ServerProcess(base_dir / "studies", _free_port(), base_dir / "server.log")
        base.start()
        t0 = time.monotonic()
        _submit_all(base, list(range(submissions)), base_images, clients, [], time.monotonic() + timeout_s)
        result.baseline_per_s = submissions / (time.monotonic() - t0)
        base.stop()

    studies = workdir / "studies"
    images = make_studies(studies)
    server = ServerProcess(studies, _free_port(), workdir / "server.log")
    server.start()
    acks: list[dict] = []
    done = threading.Event()

    def killer() -> None:
        while not done.wait(rng.uniform(*kill_every)):
            server.kill()
            result.kills += 1
            if done.is_set():
                return
            server.start()
            result.restarts += 1

    t0 = time.monotonic()
    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    try:
        result.retries = _submit_all(server, list(range(submissions)), images, clients, acks, t0 + timeout_s)
    finally:
        done.set()
        chaos.join(180)
    result.seconds = time.monotonic() - t0
    result.per_s = submissions / result.seconds
    server.kill()  # one last kill, then look at the disk before anything recovers it
    result.kills += 1
    result.partial_files, result.temporaries_after_kill = partial_label_files(studies)
    server.start()
    result.restarts += 1
    result.acknowledged = len(acks)
    _verify(server, studies, acks, result)
    server.stop()
    from ..datastore import LocalDatastore

    store = LocalDatastore(studies)
    result.index_problems = store.verify()
    rows = store.index.query("SELECT COUNT(*) AS n FROM labels WHERE tag='soak'")[0]["n"]
    result.unacknowledged_but_stored = rows - len(acks)
    return result


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``medseg bench soak``."""
    p = sub.add_parser("soak", help="label submissions from many clients while the server is SIGKILLed")
    p.add_argument("--submissions", type=int, default=100)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="where to run (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="medseg-soak-") as tmp:
        result = run_soak(args.workdir or Path(tmp), args.submissions, args.clients, seed=args.seed)
    _print(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result.as_json(), indent=2))
    return 0 if result.ok else 1


def bench_all(out_dir: Path) -> int:
    """``medseg bench all``: the default soak, figures in ``out_dir/soak.json``."""
    return _run(argparse.Namespace(submissions=100, clients=8, seed=0, workdir=None, out=out_dir / "soak.json"))


def _print(r: SoakResult) -> None:
    print(f"soak: {r.submissions} submissions from {r.clients} clients, {r.kills} SIGKILLs, {r.restarts} restarts")
    print(f"  acknowledged {r.acknowledged}, found intact {r.found_intact}, missing {len(r.missing)}, "
          f"corrupt {len(r.corrupt)}")
    print(f"  partial label files after a kill {r.partial_files} (temporaries {r.temporaries_after_kill}, "
          f"removed at start-up); stored but never acknowledged {r.unacknowledged_but_stored}")
    print(f"  index problems {len(r.index_problems)}; retries {r.retries}")
    ratio = r.per_s / r.baseline_per_s if r.baseline_per_s else float("nan")
    print(f"  throughput {r.per_s:.1f}/s under kills vs baseline {r.baseline_per_s:.1f}/s without (x{ratio:.2f})")
    print("  OK" if r.ok else "  FAILED")
