"""Vessel enhancement inside the liver and refinement of a rough vessel mask.

``vesselness``: multi-scale Frangi objectness (SimpleITK ``ObjectnessMeasure`` on a
scale-normalised Gaussian-smoothed image, bright tubes), maximum over scales, computed in the
liver's bounding box only.

``refine_vessel_mask``: the intensity of the vessels is learned from the rough mask (robust
median and spread); voxels in that intensity range that are tubular or already in the mask,
inside the (slightly grown) liver, and connected to the rough mask or to a foreground click
form the refined mask. Background clicks cut a small ball out before the connectivity test,
so what hangs only on the cut goes too.
"""

from __future__ import annotations

import cc3d
import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from .grid import Grid, VesselError, ball, bbox


def vesselness(image: sitk.Image, region: np.ndarray | None = None, sigmas_mm: tuple[float, ...] = (1.0, 2.0, 3.5),
               alpha: float = 0.5, beta: float = 0.5, gamma: float = 40.0) -> np.ndarray:
    """Frangi vesselness in [0, 1] (z, y, x array), zero outside ``region``'s bounding box."""
    grid = Grid.of(image)
    arr = sitk.GetArrayViewFromImage(image)
    out = np.zeros(grid.shape_zyx, np.float32)
    if region is not None and not np.asarray(region).any():
        raise VesselError("the liver mask is empty")
    pad = int(np.ceil(2 * max(sigmas_mm) / min(grid.spacing))) + 1
    crop = bbox(np.asarray(region, bool), pad) if region is not None else tuple(slice(0, n) for n in arr.shape)
    sub = grid.image(np.ascontiguousarray(arr[crop], dtype=np.float32))
    best = None
    for sigma in sigmas_mm:
        smooth = sitk.SmoothingRecursiveGaussian(sub, sigma) * (sigma**2)
        obj = sitk.ObjectnessMeasure(smooth, alpha=alpha, beta=beta, gamma=gamma, scaleObjectnessMeasure=False,
                                     objectDimension=1, brightObject=True)
        a = sitk.GetArrayFromImage(obj)
        best = a if best is None else np.maximum(best, a)
    out[crop] = best
    if region is not None:
        out[~np.asarray(region, bool)] = 0
    return out


def refine_vessel_mask(image: sitk.Image, rough: np.ndarray, liver: np.ndarray | None = None,
                       foreground: np.ndarray | None = None, background: np.ndarray | None = None,
                       vesselness_min: float = 0.05, cut_mm: float = 3.0) -> np.ndarray:
    """Refined boolean vessel mask from a rough one and optional clicks ((N, 3) z, y, x voxels)."""
    grid = Grid.of(image)
    rough = np.asarray(rough, bool)
    if rough.shape != grid.shape_zyx:
        raise VesselError(f"mask shape {rough.shape} does not match the image {grid.shape_zyx}")
    arr = sitk.GetArrayViewFromImage(image).astype(np.float32)
    fg = np.asarray(foreground if foreground is not None else np.zeros((0, 3)), int).reshape(-1, 3)
    bg = np.asarray(background if background is not None else np.zeros((0, 3)), int).reshape(-1, 3)
    for pts in (fg, bg):
        if len(pts) and (np.any(pts < 0) or np.any(pts >= np.array(grid.shape_zyx))):
            raise VesselError("a click lies outside the image")
    seeds = rough.copy()
    seeds[tuple(fg.T)] = True
    if not seeds.any():
        raise VesselError("nothing to refine: the rough mask is empty and there is no foreground click")
    ref = arr[rough] if rough.sum() >= 20 else arr[ndimage.binary_dilation(seeds, ball(1.5, grid.spacing_zyx)) & seeds]
    if ref.size == 0:
        ref = arr[tuple(fg.T)]
    med = float(np.median(ref))
    spread = max(1.4826 * float(np.median(np.abs(ref - med))), 10.0)
    lo, hi = med - 2.5 * spread, med + 4.0 * spread
    region = ndimage.binary_dilation(liver.astype(bool), ball(3.0, grid.spacing_zyx)) if liver is not None \
        else np.ones(rough.shape, bool)
    region |= ndimage.binary_dilation(seeds, ball(2 * max(grid.spacing), grid.spacing_zyx))
    vn = vesselness(image, region)
    cand = region & (arr >= lo) & (arr <= hi) & ((vn >= vesselness_min) | rough)
    cand |= seeds
    for p in bg:
        cut = np.zeros(rough.shape, bool)
        cut[tuple(p)] = True
        cand &= ~ndimage.binary_dilation(cut, ball(cut_mm, grid.spacing_zyx))
    labels = cc3d.connected_components(cand, connectivity=26)
    keep = np.unique(labels[seeds & cand])
    keep = keep[keep > 0]
    out = np.isin(labels, keep)
    return ndimage.binary_closing(out, ball(1.0 * max(grid.spacing), grid.spacing_zyx)) & region | (out & ~region)
