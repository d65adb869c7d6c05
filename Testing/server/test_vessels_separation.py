"""Portal / hepatic separation, click fix, vesselness and refinement on a synthetic phantom."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from medseg_server.synth import make_phantom
from medseg_server.vessels import (
    HEPATIC,
    PORTAL,
    Grid,
    VesselError,
    auto_seeds,
    reassign_branch,
    refine_vessel_mask,
    separate_trees,
    vesselness,
)


@pytest.fixture(scope="module")
def phantom():
    p = make_phantom(5, shape=(160, 160, 64), spacing=(2.4, 2.4, 3.75))
    return p, sitk.GetArrayFromImage(p.label), Grid.of(p.label)


def test_separation_matches_truth(phantom):
    _, a, g = phantom
    vessels = np.isin(a, [PORTAL, HEPATIC])
    seeds = auto_seeds(vessels, g, a == 1, a == 4)
    out = separate_trees(vessels, g, seeds)
    assert set(np.unique(out[vessels])) <= {PORTAL, HEPATIC}
    agreement = np.mean(out[vessels] == a[vessels])
    assert agreement >= 0.95, agreement
    assert not out[~vessels].any()


def test_click_moves_a_branch_and_its_subtree(phantom):
    p, a, g = phantom
    labels = np.where(np.isin(a, [PORTAL, HEPATIC]), a, 0).astype(np.uint8)
    seeds = auto_seeds(labels > 0, g, a == 1, a == 4)
    # a generation-2 portal branch of the truth: click in its middle
    branch = next(b for b in p.centerlines["trees"]["portal_vein"] if b["generation"] == 2 and len(b["points_ijk"]) > 8)
    mid = np.asarray(branch["points_ijk"][len(branch["points_ijk"]) // 2])[::-1]
    fixed, new_seeds = reassign_branch(labels, g, np.round(mid).astype(int), seeds)
    moved = (labels == PORTAL) & (fixed == HEPATIC)
    assert moved.sum() > 20
    assert not ((labels == HEPATIC) & (fixed == PORTAL)).any()
    assert fixed[tuple(np.round(mid).astype(int))] == HEPATIC
    # most of the portal tree stays portal (the trunk and the other branches)
    assert moved.sum() < 0.6 * (labels == PORTAL).sum()
    # the fix survives a new separation with the returned seeds
    again = separate_trees(labels > 0, g, new_seeds)
    assert np.mean(again[moved] == HEPATIC) > 0.8
    with pytest.raises(VesselError, match="mm from the nearest vessel"):
        reassign_branch(labels, g, np.array([0, 0, 0]), seeds)


def test_vesselness_and_refinement(phantom):
    p, a, g = phantom
    liver = np.isin(a, [1, 2, 3, 5])
    vessels = np.isin(a, [PORTAL, HEPATIC])
    vn = vesselness(p.image, liver)
    assert vn[vessels].mean() > 5 * vn[a == 1].mean()
    rng = np.random.default_rng(0)
    rough = ndimage.binary_erosion(vessels) | (vessels & (rng.random(vessels.shape) < 0.3))

    def dice(x, y):
        return 2 * (x & y).sum() / (x.sum() + y.sum())

    refined = refine_vessel_mask(p.image, rough, liver)
    assert dice(refined, vessels) > dice(rough, vessels) + 0.02
    with pytest.raises(VesselError, match="nothing to refine"):
        refine_vessel_mask(p.image, np.zeros_like(rough), liver)
