"""A throw-away Orthanc PACS (with its DICOMweb plugin) on 127.0.0.1 for tests and benchmarks.

Orthanc comes from the Debian packages ``orthanc`` and ``orthanc-dicomweb``, installed by
``scripts/install-system-deps.sh``. :func:`start_orthanc` writes a temporary configuration
(storage in a temporary folder, DICOM port off, remote access refused, no authentication), starts
the server and waits until its REST API answers.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import requests
from pydicom.uid import generate_uid

PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))
INSTALL_HINT = "run `bash scripts/install-system-deps.sh` as root (Debian packages orthanc, orthanc-dicomweb)"


class OrthancMissing(RuntimeError):
    """Orthanc or its DICOMweb plugin is not installed."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_uids(path: Path, series_key: str) -> bytes:
    """The file's bytes, with missing Study/Series/SOP UIDs and patient ID filled in deterministically."""
    ds = pydicom.dcmread(path)
    if ds.get("StudyInstanceUID") and ds.get("SeriesInstanceUID") and ds.get("SOPInstanceUID"):
        return path.read_bytes()
    ds.SOPInstanceUID = ds.get("SOPInstanceUID") or ds.file_meta.MediaStorageSOPInstanceUID
    ds.SOPClassUID = ds.get("SOPClassUID") or ds.file_meta.MediaStorageSOPClassUID
    ds.StudyInstanceUID = ds.get("StudyInstanceUID") or generate_uid(entropy_srcs=["study", series_key])
    ds.SeriesInstanceUID = ds.get("SeriesInstanceUID") or generate_uid(entropy_srcs=["series", series_key])
    ds.PatientID = ds.get("PatientID") or f"ANON-{series_key}"[:64]
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def find_orthanc() -> tuple[str, Path]:
    """Paths of the Orthanc executable and of the DICOMweb plugin library."""
    exe = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if exe is None:
        raise OrthancMissing(f"Orthanc is not installed: {INSTALL_HINT}")
    for folder in PLUGIN_DIRS:
        for lib in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return exe, lib
    raise OrthancMissing(f"the Orthanc DICOMweb plugin is not installed: {INSTALL_HINT}")


@dataclass
class Orthanc:
    """A running Orthanc: ``url`` (REST) and ``dicomweb`` (DICOMweb root)."""

    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, path: Path) -> list[str]:
        """Store every DICOM file at ``path`` (a file or a folder); returns Orthanc's instance IDs.

        Anonymised files with emptied UIDs (as in the TotalSegmentator sample) get deterministic
        ones first, as a PACS would require.
        """
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        ids = []
        for f in files:
            r = requests.post(f"{self.url}/instances", data=with_uids(f, path.name), timeout=60)
            r.raise_for_status()
            ids.append(r.json()["ID"])
        return ids

    def delete_all(self) -> None:
        """Remove every study (a clean PACS for the next test)."""
        for study in requests.get(f"{self.url}/studies", timeout=30).json():
            requests.delete(f"{self.url}/studies/{study}", timeout=30).raise_for_status()

    def stop(self, keep_storage: bool = False) -> None:
        """Stop the server and remove its storage (unless ``keep_storage``)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if not keep_storage:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_orthanc(workdir: Path, timeout: float = 60.0, port: int | None = None) -> Orthanc:
    """Start Orthanc with its storage in ``workdir`` (kept across restarts on the same folder);
    raises :class:`OrthancMissing` when it is not installed."""
    exe, plugin = find_orthanc()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    config = {
        "Name": "MedSegTestPACS",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "storage"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # only clients on this machine
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,  # no DIMSE port: DICOMweb only
        "HttpCompressionEnabled": False,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "StudiesMetadata": "Full"},
        "StableAge": 1,
        "SaveJobs": False,
        "StorageCompression": False,
    }
    cfg = workdir / "orthanc.json"
    cfg.write_text(json.dumps(config))
    log = open(workdir / "orthanc.log", "ab")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen([exe, str(cfg)], stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = Orthanc(proc, port, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = (workdir / "orthanc.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"Orthanc exited with code {proc.returncode}:\n{text}")
        try:
            if requests.get(f"{server.dicomweb}/studies", timeout=2).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"Orthanc did not answer on port {port} within {timeout:.0f} s")
