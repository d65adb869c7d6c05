"""Centrelines with a radius per point from a binary vessel mask (TEASAR-style tracing).

Per connected component: the distance to the wall (``dbf``, mm) is computed; a root is chosen
(the best voxel of a caller-given root score, else one end of the component); Dijkstra over
the 26-connected voxel graph gives the plain path length from the root (to pick the farthest
voxel not yet explained) and a path cost that prefers the middle of the lumen (edge cost
``length / dbf**2``). The farthest unexplained voxel is traced back to the skeleton along the
cheapest path, every voxel inside a ball of radius ``scale * dbf + const`` around the new path
is marked explained, and this repeats until every voxel is explained. The union of the traced
paths is a tree (a sub-tree of one shortest-path tree); short end branches that do not reach
past the parent's wall (bumps of the surface) are pruned. This is the idea of Sato et al.'s
TEASAR, written here for vessels.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from .graph import VesselTree, tree_from_parents
from .grid import Grid, VesselError, bbox

log = logging.getLogger(__name__)

OFFSETS = [(dz, dy, dx) for dz in (-1, 0, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
           if (dz, dy, dx) > (0, 0, 0)]  # the 13 forward neighbours of a 26-neighbourhood


@dataclass(frozen=True)
class CenterlineParams:
    """Tracing and pruning parameters (lengths in units of the largest voxel spacing)."""

    invalidation_scale: float = 1.5
    invalidation_const: float = 1.0
    prune_ratio: float = 1.0  # an end branch must reach prune_ratio * parent radius + prune_const past it
    prune_const: float = 1.5
    merge_ratio: float = 1.0  # bifurcations within merge_ratio * radius of the previous one join it
    trim_ratio: float = 1.0  # end points closer to the tip than trim_ratio * wall distance - trim_const go
    trim_const: float = 0.5
    min_voxels: int = 4  # components smaller than this are ignored
    smooth: int = 1


def wall_distance(mask: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Distance (mm) from each voxel centre inside ``mask`` to the nearest voxel centre outside."""
    return ndimage.distance_transform_edt(np.pad(mask, 1), sampling=spacing_zyx)[1:-1, 1:-1, 1:-1]


def radius_from_wall_distance(dbf: np.ndarray, spacing_zyx: tuple[float, float, float]) -> np.ndarray:
    """Lumen radius at a centreline voxel.

    The wall lies about half a voxel inside the nearest outside voxel centre, but a centreline
    voxel also sits up to half a voxel off the true axis; on digitised tubes of 1.5-8 voxels
    radius the two offsets cancel to within ~0.2 voxel, so the wall distance is used as it is.
    """
    return np.maximum(dbf, 0.5 * min(spacing_zyx))


def voxel_graph(mask: np.ndarray, spacing_zyx: tuple[float, float, float], weight: np.ndarray | None):
    """Sparse symmetric adjacency of the 26-connected voxels of ``mask``.

    Returns (node index image, node coordinates (N, 3) zyx, length matrix, cost matrix) where the
    cost of an edge is its length times the mean of ``weight`` at its two ends.
    """
    index = np.full(mask.shape, -1, np.int64)
    coords = np.argwhere(mask)
    index[tuple(coords.T)] = np.arange(len(coords))
    rows, cols, lens, costs = [], [], [], []
    shape = mask.shape
    for off in OFFSETS:
        src = tuple(slice(max(0, -o), shape[a] - max(0, o)) for a, o in enumerate(off))
        dst = tuple(slice(max(0, o), shape[a] - max(0, -o)) for a, o in enumerate(off))
        both = mask[src] & mask[dst]
        a = index[src][both]
        b = index[dst][both]
        length = float(np.sqrt(sum((o * s) ** 2 for o, s in zip(off, spacing_zyx, strict=True))))
        rows.append(a)
        cols.append(b)
        lens.append(np.full(len(a), length))
        if weight is not None:
            costs.append(length * 0.5 * (weight[a] + weight[b]))
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    n = len(coords)
    length_m = coo_matrix((np.concatenate(lens), (r, c)), shape=(n, n)).tocsr()
    cost_m = coo_matrix((np.concatenate(costs), (r, c)), shape=(n, n)).tocsr() if weight is not None else None
    return index, coords, length_m, cost_m


def _trace_component(mask: np.ndarray, dbf: np.ndarray, spacing_zyx, root_score: np.ndarray | None,
                     params: CenterlineParams) -> tuple[np.ndarray, np.ndarray]:
    """Trace one connected component; returns (node voxel coords zyx, parent index per node)."""
    coords = np.argwhere(mask)
    d = dbf[tuple(coords.T)]
    weight = 1.0 / np.maximum(d, 1e-3) ** 2
    _, coords, length_m, cost_m = voxel_graph(mask, spacing_zyx, weight)
    s = root_score[tuple(coords.T)] if root_score is not None else np.full(len(coords), -np.inf)
    s = np.where(np.isfinite(s), s, -np.inf)
    if np.isfinite(s.max()) and s.min() < s.max():
        root = int(np.argmax(s))
    else:  # no score, or the same everywhere (a component inside the liver):  # one end of the component: the voxel farthest from its thickest point
        far = dijkstra(length_m, directed=False, indices=int(np.argmax(d)))
        root = int(np.argmax(np.where(np.isfinite(far), far, -1)))
    daf = dijkstra(length_m, directed=False, indices=root)
    _, pred = dijkstra(cost_m, directed=False, indices=root, return_predecessors=True)
    reachable = np.isfinite(daf)
    mm = coords * np.asarray(spacing_zyx)
    kd = cKDTree(mm)
    step = max(spacing_zyx)
    explained = ~reachable
    on_skel = np.zeros(len(coords), bool)
    on_skel[root] = True
    parent = np.full(len(coords), -1, np.int64)
    explained[kd.query_ball_point(mm[root], params.invalidation_scale * d[root] + params.invalidation_const * step)] = True
    explained[root] = True
    while not explained.all():
        target = int(np.argmax(np.where(explained, -1.0, daf)))
        path = [target]
        node = target
        while not on_skel[node]:
            nxt = int(pred[node])
            parent[node] = nxt
            on_skel[node] = True
            node = nxt
            path.append(node)
        path_arr = np.asarray(path[:-1])
        radii = params.invalidation_scale * d[path_arr] + params.invalidation_const * step
        hits = kd.query_ball_point(mm[path_arr], radii)
        explained[np.concatenate([np.asarray(h, np.int64) for h in hits])] = True
        explained[path_arr] = True
    keep = np.flatnonzero(on_skel)
    remap = np.full(len(coords), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    new_parent = np.where(parent[keep] >= 0, remap[np.maximum(parent[keep], 0)], -1)
    return coords[keep], new_parent


def prune_spurs(parent: np.ndarray, mm: np.ndarray, radius: np.ndarray, ratio: float, const_mm: float,
                rounds: int = 3) -> np.ndarray:
    """Remove end chains shorter than ``ratio * radius at their junction + const_mm``; returns a keep mask."""
    keep = np.ones(len(parent), bool)
    for _ in range(rounds):
        children: dict[int, list[int]] = defaultdict(list)
        for i in np.flatnonzero(keep):
            if parent[i] >= 0:
                children[int(parent[i])].append(int(i))
        removed = False
        for leaf in [i for i in np.flatnonzero(keep) if not children[int(i)] and parent[i] >= 0]:
            chain = [int(leaf)]
            node = int(parent[leaf])
            while node >= 0 and len(children[node]) == 1 and parent[node] >= 0:
                chain.append(node)
                node = int(parent[node])
            if node < 0 or len(children[node]) < 2:
                continue  # the chain reaches the root: it is the trunk, never a spur
            length = float(np.linalg.norm(mm[chain[0]] - mm[node]))
            if length < ratio * radius[node] + const_mm:
                keep[chain] = False
                children[node].remove(chain[-1])
                removed = True
        if not removed:
            break
    return keep


def _children(parent: np.ndarray) -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(parent >= 0):
        children[int(parent[i])].append(int(i))
    return children


def merge_close_junctions(parent: np.ndarray, mm: np.ndarray, radius: np.ndarray, ratio: float
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Join a bifurcation to the previous one when the segment between them stays inside the
    previous one's lumen (within ``ratio`` x its radius): two splits closer than a radius are one
    junction at this resolution (a trifurcation), not a branch. Returns (new parent, keep mask)."""
    parent = parent.copy()
    keep = np.ones(len(parent), bool)
    children = _children(parent)
    for j2 in [i for i in range(len(parent)) if len(children[i]) >= 2]:
        if not keep[j2]:
            continue
        chain = [j2]
        node = int(parent[j2])
        while node >= 0 and len(children[node]) == 1:
            chain.append(node)
            node = int(parent[node])
        j1 = node
        if j1 < 0 or len(children[j1]) < 2:
            continue  # the segment starts at the root: it is the trunk
        if np.linalg.norm(mm[chain] - mm[j1], axis=1).max() > ratio * radius[j1]:
            continue
        keep[chain] = False
        children[j1].remove(chain[-1])
        for c in children[j2]:
            parent[c] = j1
            children[j1].append(c)
        children[j2] = []
    return parent, keep


def trim_ends(parent: np.ndarray, mm: np.ndarray, radius: np.ndarray, ratio: float, const_mm: float = 0.0
              ) -> np.ndarray:
    """Keep mask without the end-cap part of each free end (the leaves and a root with one child).

    A traced path ends on the vessel wall (the farthest voxel), a radius beyond the end of the
    axis, or on the rim of a flat end (a vessel cut by the IVC or the image border). Walking in
    from the tip, nodes closer to the tip than ``ratio`` x the vessel's end radius (the largest
    wall distance of the nodes whose doubled ball reaches the tip), less ``const_mm`` (the tip
    voxel and the wall distance are both about half a voxel off the surface), lie in that end
    cap and are dropped (never a bifurcation, never the whole branch)."""
    keep = np.ones(len(parent), bool)
    children = _children(parent)

    def walk(chain: list[int]) -> None:
        tip = mm[chain[0]]
        dist = np.linalg.norm(mm[chain] - tip, axis=1)
        r = radius[chain]
        end_radius = float(r[dist <= 2 * r].max(initial=r[0]))  # the vessel's radius at its end
        for node, d in zip(chain[:-1], dist[:-1], strict=True):  # the last node (bifurcation) stays
            if d >= ratio * end_radius - const_mm:
                break
            keep[node] = False

    for leaf in (i for i in range(len(parent)) if not children[i] and parent[i] >= 0):
        chain = [leaf]
        node = int(parent[leaf])
        while node >= 0 and len(children[node]) == 1 and parent[node] >= 0:
            chain.append(node)
            node = int(parent[node])
        chain.append(node)
        walk(chain)
    for root in (i for i in range(len(parent)) if parent[i] < 0 and len(children[i]) == 1):
        chain = [root]
        node = children[root][0]
        while len(children[node]) == 1:
            chain.append(node)
            node = children[node][0]
        chain.append(node)
        walk(chain)
    return keep


def _compact(parent: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Parent pointers of the kept nodes, renumbered; a node whose parent went becomes a root
    (only trimmed root ends do that)."""
    remap = np.full(len(parent), -1, np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    kept_parent = parent[keep]
    return np.where(kept_parent >= 0, remap[np.maximum(kept_parent, 0)], -1)


def clean_tree(parent: np.ndarray, mm: np.ndarray, radius: np.ndarray, params: CenterlineParams,
               step_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Prune spurs, join junctions closer than a radius, trim end caps; returns (kept indices, parent)."""
    idx = np.arange(len(parent))
    for stage in ("prune", "merge", "trim"):
        if stage == "prune":
            keep = prune_spurs(parent, mm, radius, params.prune_ratio, params.prune_const * step_mm)
        elif stage == "merge":
            parent, keep = merge_close_junctions(parent, mm, radius, params.merge_ratio)
        else:
            keep = trim_ends(parent, mm, radius, params.trim_ratio, params.trim_const * step_mm)
        parent = _compact(parent, keep)
        idx, mm, radius = idx[keep], mm[keep], radius[keep]
    return idx, parent


def extract_centerlines(mask: np.ndarray, grid: Grid, name: str = "vessel", root_score: np.ndarray | None = None,
                        params: CenterlineParams | None = None, prune: bool = True) -> VesselTree:
    """Centreline tree of a binary vessel mask (z, y, x array on ``grid``).

    ``root_score`` (same shape, float, ``-inf`` where a root may not be) picks the root of each
    connected component at its maximum; components it does not reach start at one of their ends.
    """
    params = params or CenterlineParams()
    mask = np.asarray(mask, bool)
    if mask.shape != grid.shape_zyx:
        raise VesselError(f"mask shape {mask.shape} does not match the image grid {grid.shape_zyx}")
    if not mask.any():
        raise VesselError(f"the {name} mask is empty")
    crop = bbox(mask, pad=1)
    sub = mask[crop]
    offset = np.array([s.start for s in crop])
    dbf = wall_distance(sub, grid.spacing_zyx)
    score = root_score[crop] if root_score is not None else None
    comps = cc3d.connected_components(sub, connectivity=26)
    all_zyx, all_parent = [], []
    base = 0
    counts = np.bincount(comps.ravel())[1:]
    for comp_id in np.argsort(-counts) + 1:
        if counts[comp_id - 1] < params.min_voxels:
            continue
        cbox = bbox(comps == comp_id, pad=1)
        cmask = comps[cbox] == comp_id
        zyx, par = _trace_component(cmask, np.where(cmask, dbf[cbox], 0), grid.spacing_zyx,
                                    None if score is None else score[cbox], params)
        all_zyx.append(zyx + np.array([s.start for s in cbox]))
        all_parent.append(np.where(par >= 0, par + base, -1))
        base += len(zyx)
    if not all_zyx:
        raise VesselError(f"the {name} mask has no component of {params.min_voxels} voxels or more")
    zyx = np.concatenate(all_zyx)
    parent = np.concatenate(all_parent)
    radius = radius_from_wall_distance(dbf[tuple(zyx.T)], grid.spacing_zyx)
    zyx = zyx + offset
    mm = grid.zyx_to_mm(zyx)
    if prune:
        idx, parent = clean_tree(parent, mm, radius, params, max(grid.spacing))
        zyx, mm, radius = zyx[idx], mm[idx], radius[idx]
    tree = tree_from_parents(name, parent, zyx, mm, radius, smooth=params.smooth)
    cross_section_radii(tree, mask, grid)
    return tree


def cross_section_radii(tree: VesselTree, mask: np.ndarray, grid: Grid, window: int = 2, clamp: float = 0.4) -> None:
    """Replace each point's radius by the radius of a circle of the local mean cross-section.

    Every mask voxel goes to its nearest centreline point; along a branch, the volume of the
    voxels of the points within ``window`` of a point divided by their length is the local
    cross-section area A, and r = sqrt(A / pi). Unlike the wall distance, this does not depend
    on how the vessel lies in the voxel grid. The result stays within ``1 +- clamp`` of the wall
    distance estimate (ends and bifurcations, where the area is ill defined, keep close to it).
    """
    pts, owner, local = [], [], []
    for b in tree.branches:
        start = 1 if b.parent_id is not None else 0
        pts.append(b.points_mm[start:])
        owner.append(np.full(len(b.points_mm) - start, b.id))
        local.append(np.arange(start, len(b.points_mm)))
    all_pts = np.concatenate(pts)
    if len(all_pts) < 2:
        return
    vox = grid.zyx_to_mm(np.argwhere(mask))
    _, j = cKDTree(all_pts).query(vox)
    counts = np.bincount(j, minlength=len(all_pts)).astype(float)
    owner_a, local_a = np.concatenate(owner), np.concatenate(local)
    for b in tree.branches:
        n = len(b.points_mm)
        if n < 2 * window + 3:
            continue
        c = np.zeros(n)
        sel = owner_a == b.id
        c[local_a[sel]] = counts[sel]
        seg = np.linalg.norm(np.diff(b.points_mm, axis=0), axis=1)
        step = np.concatenate([[seg[0] / 2], (seg[:-1] + seg[1:]) / 2, [seg[-1] / 2]])
        kernel = np.ones(2 * window + 1)
        vol = np.convolve(c, kernel, mode="same") * grid.voxel_ml * 1000.0
        length = np.convolve(step, kernel, mode="same")
        r = np.sqrt(vol / np.maximum(length, 1e-6) / np.pi)
        inner = slice(window + 1, n - window - 1)
        lo, hi = (1 - clamp) * b.radius_mm[inner], (1 + clamp) * b.radius_mm[inner]
        b.radius_mm[inner] = np.clip(r[inner], lo, hi)
