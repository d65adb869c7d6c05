"""Shared fixtures: tiny CT volumes, a studies folder, a live server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REAL_CT = SHARED / "data" / "real-ct"
sys.path.insert(0, str(REPO / "MedSegExtension" / "MedSeg"))

from livetools import LiveServer, free_port  # noqa: E402
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
