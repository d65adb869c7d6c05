"""Fixtures of the Slicer module tests: a real slicer-core MRML scene and volume helpers."""

from __future__ import annotations

import pytest


@pytest.fixture
def scene():
    """A fresh MRML scene from slicer-core (Slicer's real MRML, no application)."""
    import slicer  # slicer-core, a dev dependency of MedSegServer: a missing one fails, never skips

    from MedSegLib.mrml import ensure_converters

    ensure_converters()
    s = slicer.vtkMRMLScene()
    yield s
    s.Clear(1)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One real server for all the tests of a module (an empty studies folder; volumes get uploaded)."""
    from livetools import LiveServer, free_port
    from medseg_server.settings import Settings

    studies = tmp_path_factory.mktemp("module-studies")
    with LiveServer(Settings(studies=studies, port=free_port())) as live:
        yield live
