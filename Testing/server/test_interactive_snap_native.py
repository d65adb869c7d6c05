"""Native boundary placement of a blob mask brought up from a coarser level (``refine.snap_native``)."""

import numpy as np
from scipy import ndimage

from medseg_server.interactive.refine import snap_native


def _ball_image(contrast: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 12-voxel-radius ball of 60 HU in a background of ``60 - contrast`` HU, blurred and noisy."""
    grid = np.indices((40, 40, 40)) - 19.5
    ball = np.sqrt((grid**2).sum(axis=0)) <= 12.0
    image = np.where(ball, 60.0, 60.0 - contrast)
    image = ndimage.gaussian_filter(image, 0.7) + np.random.default_rng(seed).normal(0, 10, ball.shape)
    return ball, image.astype(np.int16)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / (a.sum() + b.sum())


def test_eroded_mask_moves_onto_the_edge():
    truth, image = _ball_image(contrast=150.0)
    shrunk = ndimage.binary_erosion(truth)  # where a coarse level leaves the boundary
    snapped = snap_native(shrunk, image)
    assert _dice(snapped, truth) > _dice(shrunk, truth) + 0.05
    assert _dice(snapped, truth) > 0.97
    grown = ndimage.binary_dilation(truth)  # and from outside
    assert _dice(snap_native(grown, image), truth) > _dice(grown, truth) + 0.05


def test_no_contrast_leaves_the_mask_alone():
    truth, image = _ball_image(contrast=0.0)
    shrunk = ndimage.binary_erosion(truth)
    assert np.array_equal(snap_native(shrunk, image), shrunk)
