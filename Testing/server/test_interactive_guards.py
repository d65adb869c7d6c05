"""Engine guards: a flooding blob does not get a bigger region; positive clicks on a blob never take away."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from interactive_volumes import two_blobs
from medseg_server.interactive import Interaction, InteractiveSession
from medseg_server.interactive.profiles import profile_for


def _uniform(shape: tuple[int, int, int], spacing: float) -> sitk.Image:
    hu = 60.0 + np.random.default_rng(0).normal(0, 8, shape)
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing((spacing,) * 3)
    return image


def test_a_flooding_blob_keeps_its_first_region() -> None:
    spacing = 4.0
    image = _uniform((100, 100, 100), spacing)  # 40 cm of one tissue: any click floods it
    session = InteractiveSession(image)
    session.interact("ivc", Interaction(positive=np.array([[50, 50, 50]])))
    mask = session.mask("ivc")
    extent = np.ptp(np.argwhere(mask), axis=0) + 1
    first_region = 2 * profile_for("ivc").first_extent_mm / spacing
    assert mask[50, 50, 50]
    assert mask.sum() * spacing**3 / 1000.0 > profile_for("ivc").max_volume_ml  # it did flood ...
    assert np.all(extent <= first_region + 2)  # ... but only the region around the click


def test_positive_clicks_on_a_blob_only_add() -> None:
    """Every voxel of a blob's last result stays when the next interaction is positive clicks only."""
    image, _, _, _ = two_blobs()
    session = InteractiveSession(image)
    before = session.mask("liver")
    for point in ([20, 32, 20], [20, 32, 48], [20, 26, 14], [20, 36, 50], [14, 32, 20]):
        session.interact("liver", Interaction(positive=np.array([point])))
        after = session.mask("liver")
        assert not (before & ~after).any() and after[tuple(point)]
        before = after
