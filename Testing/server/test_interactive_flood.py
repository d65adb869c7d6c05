"""A blob that floods past its plausible size does not get a bigger region to flood into."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

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
