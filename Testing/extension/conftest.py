"""Fixtures of the Slicer module tests: a real slicer-core MRML scene and volume helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk


@pytest.fixture
def scene():
    """A fresh MRML scene from slicer-core (Slicer's real MRML, no application)."""
    import slicer  # slicer-core, a dev dependency of MedSegServer: a missing one fails, never skips

    from MedSegLib.mrml import ensure_converters

    ensure_converters()
    s = slicer.vtkMRMLScene()
    yield s
    s.Clear(1)


def oblique_image(shape_zyx=(9, 11, 13), spacing=(0.7, 1.3, 2.9), origin=(12.5, -40.0, 7.25), seed=0) -> sitk.Image:
    """A small int16 image with an oblique, non-orthogonal-to-axes direction and non-unit spacing."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1000, shape_zyx).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), 0.6).GetMatrix()  # axis, angle (rad)
    image.SetDirection(rotation)
    return image


def _root_conftest():
    """``Testing/conftest.py`` (its ``LiveServer``), which ``import conftest`` cannot reach from here."""
    name = "medseg_testing_root_conftest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "conftest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    """One real server for all the tests of a module (an empty studies folder; volumes get uploaded)."""
    from medseg_server.settings import Settings

    root = _root_conftest()
    studies = tmp_path_factory.mktemp("module-studies")
    with root.LiveServer(Settings(studies=studies, port=root.free_port())) as live:
        yield live
