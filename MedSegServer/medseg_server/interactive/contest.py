"""Where a negative click may take voxels back from a blob target.

A negative click is meant to remove the error it sits in, not the object. So it only contests
the part of the last result that it reaches (along an edge-weighted geodesic path inside the
object) before the positive evidence does: the positive clicks, painted voxels and the rest of
the object beyond ``radius_mm`` from the click (which stands for everything earlier clicks have
established). Everything else of the last result is protected: it seeds the positive side of
the competition and stays in the result.
"""

from __future__ import annotations

import numpy as np
from skimage.graph import MCP_Geometric

EDGE_WEIGHT = 2.0  # extra path cost per unit of gradient (relative to the object's median gradient)


def edge_cost(gradient: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Local path cost: 1 in flat areas, growing with the gradient (edges are expensive to cross)."""
    values = gradient[inside] if inside.any() else gradient
    scale = max(float(np.median(values)), 1e-3)
    return 1.0 + EDGE_WEIGHT * gradient.astype(np.float64) / scale


def _ball_box(point: np.ndarray, radius_mm: float, spacing: np.ndarray,
              shape: tuple[int, int, int]) -> tuple[slice, slice, slice]:
    r = np.ceil(radius_mm / spacing).astype(int)
    lo = np.maximum(point - r, 0)
    hi = np.minimum(point + r + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _faces(shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    for axis in range(3):
        out[(slice(None),) * axis + (0,)] = True
        out[(slice(None),) * axis + (-1,)] = True
    return out


def contested(previous: np.ndarray, domain: np.ndarray, gradient: np.ndarray, spacing: np.ndarray,
              click: np.ndarray, positive: np.ndarray, radius_mm: float) -> np.ndarray:
    """Voxels of ``previous`` the negative ``click`` may take back (all arrays on one region grid).

    ``domain``: voxels a path may cross (the last result and the current candidate);
    ``positive``: positive evidence (clicks, painted voxels) as a mask.
    """
    out = np.zeros(previous.shape, dtype=bool)
    box = _ball_box(np.asarray(click, dtype=int), radius_mm, spacing, previous.shape)
    prev = previous[box]
    if not prev.any():
        return out
    local = np.asarray(click, dtype=int) - np.array([s.start for s in box])
    walk = domain[box] | prev
    walk[tuple(local)] = True
    cost = edge_cost(gradient[box], prev)
    cost[~walk] = np.inf
    d_neg, _ = MCP_Geometric(cost, sampling=tuple(spacing)).find_costs([tuple(local)])
    sources = (positive[box] | (prev & _faces(prev.shape))) & walk
    sources[tuple(local)] = False
    if sources.any():
        d_pos, _ = MCP_Geometric(cost, sampling=tuple(spacing)).find_costs(np.argwhere(sources).tolist())
    else:
        d_pos = np.full(prev.shape, np.inf)
    grids = np.ogrid[tuple(slice(0, n) for n in prev.shape)]
    ball = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, local, spacing, strict=True)) <= radius_mm**2
    out[box] = prev & ball & np.isfinite(d_neg) & (d_neg < d_pos)
    return out


def protected(previous: np.ndarray, domain: np.ndarray, gradient: np.ndarray, spacing: np.ndarray,
              clicks: np.ndarray, positive: np.ndarray, radius_mm: float) -> np.ndarray:
    """The part of ``previous`` none of the negative ``clicks`` contests."""
    zone = np.zeros(previous.shape, dtype=bool)
    for click in np.asarray(clicks, dtype=int).reshape(-1, 3):
        zone |= contested(previous, domain, gradient, spacing, click, positive, radius_mm)
    return previous & ~zone
