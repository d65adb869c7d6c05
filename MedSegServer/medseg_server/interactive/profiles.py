"""How each kind of target is segmented: working resolution, extent, shape priors."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetProfile:
    """Tuning of the engine for one structure."""

    tubular: bool = False  # a vessel: contrast range + thickness leak guard (see tubular.py)
    use_vesselness: bool = False  # also gate the candidate by Hessian vesselness (slow on a first click)
    max_radius_mm: float = 10.0  # tubular: thicker than this is not this vessel (leak guard)
    range_share: float = 0.5  # tubular: a click's range reaches this share of the way to its surroundings
    max_volume_ml: float = 150.0  # a connected result larger than this is a leak (blobs: negative clicks may then cut freely)
    contest_mm: float = 40.0  # a negative click only takes back voxels of the last result this close to it
    min_spacing_mm: float = 1.0  # do not work finer than this
    first_extent_mm: float = 60.0  # half-size of the region searched around a first click
    margin_mm: float = 20.0  # region searched around the current object for later clicks
    k_sigma: float = 2.5  # intensity interval half-width in noise standard deviations
    min_halfwidth_hu: float = 25.0  # ... but never narrower than this
    open_mm: float = 0.0  # morphological opening radius cutting thin bridges (blobs)
    hole_mm: float = 0.0  # holes up to this equivalent diameter are filled
    voxel_budget: int = 1_000_000  # largest region (level voxels) one interaction works on
    inside: tuple[str, ...] = ()  # targets this one lies within: it may take their voxels (the label-map
    # convention: the liver label excludes its vessels and tumours) and gives them back when it lets go


PROFILES: dict[str, TargetProfile] = {
    "liver": TargetProfile(min_spacing_mm=2.5, first_extent_mm=130.0, margin_mm=25.0, k_sigma=3.0,
                           min_halfwidth_hu=30.0, open_mm=7.0, hole_mm=12.0, max_volume_ml=4000.0,
                           voxel_budget=1_500_000),  # 512x512x~150 CT: the ~2.5 mm level, not the ~5 mm one
    "tumour": TargetProfile(min_spacing_mm=1.0, first_extent_mm=45.0, margin_mm=12.0, min_halfwidth_hu=20.0,
                            open_mm=2.0, hole_mm=8.0, max_volume_ml=1000.0, inside=("liver",)),
    "ivc": TargetProfile(tubular=False, min_spacing_mm=1.4, first_extent_mm=110.0, margin_mm=20.0,
                         min_halfwidth_hu=35.0, open_mm=2.0, hole_mm=8.0),
    "portal_vein": TargetProfile(tubular=True, min_spacing_mm=1.0, first_extent_mm=110.0, margin_mm=20.0,
                                 k_sigma=3.0, min_halfwidth_hu=40.0, voxel_budget=2_500_000, max_radius_mm=10.0,
                                 inside=("liver",)),
    # hepatic veins: a first click lands on a trunk by the IVC, brighter than most of the tree (on the
    # phantoms half way from it kept 39-40 % of the tree's voxels in range; 0.6 raised Dice@5 by 0.03-0.08
    # on four phantoms, two held out). The portal vein keeps half way: lower, it runs into the hepatic tree.
    "hepatic_veins": TargetProfile(tubular=True, min_spacing_mm=1.0, first_extent_mm=110.0, margin_mm=20.0,
                                   k_sigma=3.0, min_halfwidth_hu=40.0, voxel_budget=2_500_000, max_radius_mm=9.0,
                                   range_share=0.6, inside=("liver",)),
}
GENERIC = TargetProfile(min_spacing_mm=1.4, first_extent_mm=80.0, open_mm=2.0, hole_mm=8.0)


def profile_for(name: str) -> TargetProfile:
    """The profile of target ``name`` (a generic blob profile for unknown names)."""
    return PROFILES.get(name, GENERIC)
