"""Nested targets: vessels and tumours lie inside the liver and may take its voxels; what they let go returns to it."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from medseg_server.interactive import Interaction, InteractiveSession

SHAPE = (40, 64, 64)


def _liver_with_vessel() -> tuple[sitk.Image, np.ndarray, np.ndarray]:
    """A 60 HU liver (radius 22 mm) crossed by a 4 mm bright vessel (180 HU), in fat, 1.5 mm voxels."""
    z, y, x = np.indices(SHAPE)
    liver = ((z - 20) * 1.5) ** 2 + ((y - 32) * 1.5) ** 2 + ((x - 32) * 1.5) ** 2 <= 22.0**2
    vessel = (((z - 20) * 1.5) ** 2 + ((y - 32) * 1.5) ** 2 <= 4.0**2) & (x >= 12) & (x <= 52)
    hu = np.full(SHAPE, -100.0)
    hu[liver] = 60.0
    hu[vessel] = 180.0
    hu += np.random.default_rng(3).normal(0, 6, SHAPE)
    img = sitk.GetImageFromArray(hu.astype(np.int16))
    img.SetSpacing((1.5, 1.5, 1.5))
    return img, liver, vessel


def test_a_vessel_takes_the_livers_voxels_and_gives_them_back():
    img, liver, vessel = _liver_with_vessel()
    s = InteractiveSession(img, {"liver": 1, "portal_vein": 2})
    s.interact("liver", Interaction(scribble_fg=np.argwhere(liver)))  # the liver painted over its vessel
    liver_first = s.mask("liver").copy()
    assert liver_first[vessel & liver].all()
    s.interact("portal_vein", Interaction(positive=np.array([[20, 32, 32]])))
    portal = s.mask("portal_vein")
    assert portal[vessel].mean() > 0.6  # it could take the liver's voxels
    assert not (portal & s.mask("liver")).any()
    assert (s.mask("liver") | portal)[liver_first].all()  # the liver lost only what the vessel took
    s.undo()
    assert (s.mask("liver") == liver_first).all() and not s.mask("portal_vein").any()
    s.interact("portal_vein", Interaction(positive=np.array([[20, 32, 32]])))
    s.reset("portal_vein")  # what the vessel lets go of returns to the liver, not to background
    assert (s.mask("liver") == liver_first).all()
    s.undo()
    assert (s.mask("portal_vein") == portal).all()


def test_a_target_not_nested_still_cannot_take_a_finished_neighbour():
    img, liver, vessel = _liver_with_vessel()
    s = InteractiveSession(img, {"liver": 1, "ivc": 4})
    s.interact("liver", Interaction(scribble_fg=np.argwhere(liver)))
    liver_first = s.mask("liver").copy()
    s.interact("ivc", Interaction(positive=np.array([[20, 32, 32]])))  # IVC is not inside the liver's label
    assert (s.mask("liver") == liver_first).all()
    assert not (s.mask("ivc") & liver_first).any()
