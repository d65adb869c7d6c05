"""A tiny synthetic abdominal CT for the module's self test (no data files, no server package)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def synthetic_ct(shape_zyx=(24, 40, 48), spacing=(1.5, 1.2, 2.0), seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """(CT in HU, label) with a body at -100 HU, a liver ellipsoid at 60 HU (label 1) and a vessel at
    180 HU (label 2) running through it; slightly oblique so orientation mistakes show."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape_zyx)
    cz, cy, cx = (s / 2 for s in shape_zyx)
    body = ((y - cy) / (0.48 * shape_zyx[1])) ** 2 + ((x - cx) / (0.48 * shape_zyx[2])) ** 2 <= 1
    liver = ((z - cz) / (0.35 * shape_zyx[0])) ** 2 + ((y - cy) / (0.3 * shape_zyx[1])) ** 2 + (
        (x - cx * 0.9) / (0.3 * shape_zyx[2])
    ) ** 2 <= 1
    vessel = liver & ((y - cy) ** 2 + (x - cx * 0.9) ** 2 <= 4)
    hu = np.full(shape_zyx, -1000.0)
    hu[body] = -100
    hu[liver] = 60
    hu[vessel] = 180
    hu += rng.normal(0, 8, shape_zyx)
    image = sitk.GetImageFromArray(hu.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin((-30.0, -20.0, 10.0))
    image.SetDirection(sitk.VersorTransform((0.0, 0.0, 1.0), 0.2).GetMatrix())
    label_array = np.zeros(shape_zyx, np.uint8)
    label_array[liver] = 1
    label_array[vessel] = 2
    label = sitk.GetImageFromArray(label_array)
    label.CopyInformation(image)
    return image, label


def inside_point(label: sitk.Image, value: int = 1, margin: int = 4) -> tuple[int, int, int]:
    """An ``(i, j, k)`` voxel of ``value`` near the structure's centre, at least ``margin`` voxels (in j)
    from the centre line so it is not on the vessel."""
    points = np.argwhere(sitk.GetArrayViewFromImage(label) == value)
    mid = points.mean(axis=0)
    off = points[np.abs(points[:, 1] - mid[1]) > margin]
    k, j, i = off[np.argmin(np.linalg.norm(off - mid, axis=1))]
    return int(i), int(j), int(k)
