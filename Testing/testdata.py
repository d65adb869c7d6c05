"""Tiny synthetic volumes for tests (no dependency on the phantom generator)."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def make_ct(shape_zyx=(24, 40, 48), spacing=(1.5, 1.2, 2.0), origin=(-30.0, -20.0, 10.0), seed=0) -> tuple[sitk.Image, sitk.Image]:
    """A tiny CT-like volume (fat body, a 'liver' blob at 60 HU, a vessel at 180 HU) and its label."""
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
    image.SetOrigin(origin)
    label_arr = np.zeros(shape_zyx, np.uint8)
    label_arr[liver] = 1
    label_arr[vessel] = 2
    label = sitk.GetImageFromArray(label_arr)
    label.CopyInformation(image)
    return image, label
