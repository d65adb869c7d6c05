"""Work a session does once when it opens, in the background: the feature fields the first
interactions of its targets will read (smoothed image and gradient of the level a blob target
is segmented on, smoothed image of a vessel's level), so that clicks do not pay for them.

Only fields of a level that a target's first region covers a good part of are filled (a small
target's region is cheap to compute when it is clicked). An interaction that arrives before the
warm-up is done waits at most for the slab being computed, then computes what it still needs.
"""

from __future__ import annotations

import numpy as np

from .background import BackgroundWork
from .profiles import TargetProfile
from .pyramid import Pyramid

MIN_SHARE = 0.125  # warm a level only when a target's first region covers this share of it


def first_level(pyramid: Pyramid, profile: TargetProfile) -> int:
    """The level a target's first interaction works on (without a box)."""
    extent = np.full(3, 2.0 * profile.first_extent_mm)
    return pyramid.level_for(profile.min_spacing_mm, extent, profile.voxel_budget)


def plan(pyramid: Pyramid, profiles: list[TargetProfile]) -> list[tuple[int, str]]:
    """(level, field) pairs to fill: blobs' levels first (smooth, gradient), then vessels' (smooth)."""
    blobs: list[tuple[int, str]] = []
    vessels: list[tuple[int, str]] = []
    for prof in profiles:
        i = first_level(pyramid, prof)
        lev = pyramid.levels[i]
        region = np.minimum(2.0 * prof.first_extent_mm / lev.spacing, lev.shape)
        if np.prod(region) < MIN_SHARE * np.prod(lev.shape):
            continue
        names = ("smooth",) if prof.tubular else ("smooth", "gradient")
        (vessels if prof.tubular else blobs).extend((i, n) for n in names)
    out: list[tuple[int, str]] = []
    for item in blobs + vessels:
        if item not in out:
            out.append(item)
    return out


class Warmup(BackgroundWork):
    """Fills the planned fields of a pyramid in a daemon thread."""

    def __init__(self, pyramid: Pyramid, fields: list[tuple[int, str]]) -> None:
        self.fields = fields
        self._pyramid = pyramid
        super().__init__("medseg-warmup")

    def work(self) -> None:
        for level, name in self.fields:
            self._pyramid.levels[level].field(name).fill(self._stop)
