"""Small volumes for the Slicer-module tests."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def oblique_image(shape_zyx=(9, 11, 13), spacing=(0.7, 1.3, 2.9), origin=(12.5, -40.0, 7.25), seed=0) -> sitk.Image:
    """A small int16 image with an oblique, non-orthogonal-to-axes direction and non-unit spacing."""
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.integers(-1000, 1000, shape_zyx).astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    rotation = sitk.VersorTransform((0.3, -0.5, 0.8), 0.6).GetMatrix()  # axis, angle (rad)
    image.SetDirection(rotation)
    return image
