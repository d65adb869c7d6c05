"""Shared fixtures: tiny CT volumes, a studies folder, a live server on 127.0.0.1."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_CT = SHARED / "data" / "real-ct"
sys.path.insert(0, str(REPO / "MedSegExtension" / "MedSeg"))

from testdata import make_ct  # noqa: E402


@pytest.fixture
def tiny_case() -> tuple[sitk.Image, sitk.Image]:
    return make_ct()


@pytest.fixture
def studies(tmp_path: Path) -> Path:
    """A studies folder with three tiny CT images."""
    folder = tmp_path / "studies"
    folder.mkdir()
    for i in range(3):
        image, _ = make_ct(seed=i)
        sitk.WriteImage(image, str(folder / f"case_{i:03d}.nii.gz"), True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server in a background thread."""

    def __init__(self, settings) -> None:
        import uvicorn

        from medseg_server.app import create_app

        self.app = create_app(settings)
        self.ctx = self.app.state.ctx
        self.port = settings.port
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def server_factory(tmp_path: Path):
    """Start servers with custom settings; all stopped at the end of the test."""
    from medseg_server.settings import Settings

    started: list[LiveServer] = []

    def start(studies: Path, **overrides) -> LiveServer:
        settings = Settings(studies=studies, port=free_port(), **overrides)
        live = LiveServer(settings).__enter__()
        started.append(live)
        return live

    yield start
    for live in started:
        live.__exit__(None, None, None)


@pytest.fixture
def live_server(server_factory, studies: Path) -> Iterator[LiveServer]:
    yield server_factory(studies)


@pytest.fixture
def client(live_server):
    from MedSegLib.client import MedSegClient

    c = MedSegClient(live_server.url, timeout=60, user="tester")
    yield c
    c.close()


SAMPLE_DATA = REPO / "Resources" / "SampleData"


@pytest.fixture
def real_ct() -> Path:
    """Real CT (TotalSegmentator example) shipped in Resources/SampleData: ``totalseg/example_ct.nii.gz``."""
    return SAMPLE_DATA


@pytest.fixture
def shared_real_ct() -> Path:
    """The fuller real CT set beside the project (../shared/data/real-ct: DICOM series, DICOM SEG)."""
    if not (REAL_CT / "totalseg" / "example_ct.nii.gz").exists():
        pytest.fail(f"real CT samples missing at {REAL_CT}: CI copies shared/ beside the clone")
    return REAL_CT
