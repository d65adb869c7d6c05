"""Vessel trees as centreline polylines with radii: seeded branching growth and rasterisation.

A tree is a list of :class:`Branch` polylines (physical mm, one radius per point). Growth is
a seeded random walk per branch that is steered away from the organ surface (distance map
of the allowed domain) and from other vessels, and that splits at its planned length into
two children following Murray's law (``r0**3 = r1**3 + r2**3``) with Murray's optimal
branching angles. A child's first point is its parent's last point.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .geometry import Grid, Slices


@dataclass
class Branch:
    """One vessel segment between two bifurcations (or a root / a terminal end)."""

    id: int
    parent_id: int | None
    generation: int
    points: np.ndarray  # (n, 3) physical x, y, z mm
    radii: np.ndarray  # (n,) mm
    name: str | None = None


@dataclass
class Seed:
    """A branch waiting to grow."""

    tree: str
    start: np.ndarray
    direction: np.ndarray
    radius: float
    generation: int
    parent_id: int | None = None
    name: str | None = None
    length: float | None = None
    target: np.ndarray | None = None
    free_length: float = 0.0
    exclude_trees: tuple[str, ...] = ()
    exclude_roots: bool = False  # ignore the other root trunks of the same tree (shared confluence)
    rank: int = 0  # growth order offset (added to the generation), inherited by the children


@dataclass
class GrowthParams:
    """Tuning of the branching process (lengths in mm)."""

    step: float
    r_min: float
    length_factor: float = 6.5
    max_generation: int = 12
    wander: float = 0.06
    margin: float = 0.8
    clearance: float = 1.0
    taper: float = 0.02


class Domain:
    """Where vessels may grow: depth (mm) inside a mask, minus spherical obstacles.

    The depth is the euclidean distance map of the mask (nearest-voxel lookup), so it is
    about a voxel accurate; spherical obstacles (tumours) are exact.
    """

    def __init__(self, grid: Grid, mask: np.ndarray, sl: Slices, obstacles: list[tuple[np.ndarray, float]]):
        crop = np.pad(mask[sl], 1)
        sp = (grid.spacing[2], grid.spacing[1], grid.spacing[0])
        self.edt = ndimage.distance_transform_edt(crop, sampling=sp).astype(np.float32)
        self.grad = np.stack(np.gradient(self.edt, *sp)[::-1], axis=-1)  # (z, y, x, 3) as x, y, z
        self.shape = self.edt.shape
        # physical -> crop index: idx = (p - base) * inv, with base the physical point of crop voxel 0
        start = (sl[2].start - 1, sl[1].start - 1, sl[0].start - 1)
        self._base = tuple(grid.origin[a] + start[a] * grid.spacing[a] for a in range(3))
        self._inv = tuple(1.0 / grid.spacing[a] for a in range(3))
        self.obstacles = obstacles

    def _idx(self, p: np.ndarray) -> tuple[int, int, int] | None:
        b, v = self._base, self._inv
        i = int((float(p[0]) - b[0]) * v[0] + 0.5)
        j = int((float(p[1]) - b[1]) * v[1] + 0.5)
        k = int((float(p[2]) - b[2]) * v[2] + 0.5)
        if 0 <= k < self.shape[0] and 0 <= j < self.shape[1] and 0 <= i < self.shape[2]:
            return k, j, i
        return None

    def depth(self, p: np.ndarray) -> float:
        """Distance (mm) from ``p`` to the domain boundary; negative/zero outside."""
        idx = self._idx(p)
        d = float(self.edt[idx]) if idx is not None else -1.0
        if self.obstacles:
            x, y, z = float(p[0]), float(p[1]), float(p[2])
            for c, r in self.obstacles:
                d = min(d, math.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - r)
        return d

    def inward(self, p: np.ndarray) -> np.ndarray:
        """Unit direction of increasing depth at ``p``."""
        idx = self._idx(p)
        g = self.grad[idx].astype(float) if idx is not None else np.zeros(3)
        for c, r in self.obstacles:
            off = p - c
            dist = float(np.linalg.norm(off))
            if dist - r < 4.0 and dist > 1e-6:
                g = g + off / dist
        return _unit(g)


class Occupancy:
    """Centreline points of the vessels grown so far (for collision avoidance)."""

    def __init__(self) -> None:
        self._n = 0
        self.points = np.zeros((1024, 3))
        self.radii = np.zeros(1024)
        self.uid = np.zeros(1024, int)
        self.tree_idx = np.zeros(1024, int)
        self.trees: list[str] = []

    def add(self, points: np.ndarray, radii: np.ndarray, uid: int, tree: str) -> None:
        if tree not in self.trees:
            self.trees.append(tree)
        n, m = self._n, len(points)
        if n + m > len(self.radii):
            cap = max(2 * len(self.radii), n + m)
            self.points = np.resize(self.points, (cap, 3))
            self.radii, self.uid, self.tree_idx = (
                np.resize(a, cap) for a in (self.radii, self.uid, self.tree_idx)
            )
        self.points[n : n + m] = points
        self.radii[n : n + m] = radii
        self.uid[n : n + m] = uid
        self.tree_idx[n : n + m] = self.trees.index(tree)
        self._n = n + m

    @property
    def max_radius(self) -> float:
        return float(self.radii[: self._n].max(initial=0.0))

    def near(
        self, centre: np.ndarray, reach: float, exclude_uids: set[int], exclude_trees: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Points (and radii) within ``reach`` of ``centre`` not belonging to the excluded branches."""
        off = self.points[: self._n] - centre
        idx = np.flatnonzero(np.einsum("ij,ij->i", off, off) < reach * reach)
        if len(idx) and (exclude_uids or exclude_trees):
            uid = self.uid[idx]
            keep = np.ones(len(idx), bool)
            for u in exclude_uids:
                keep &= uid != u
            for t in exclude_trees:
                if t in self.trees:
                    keep &= self.tree_idx[idx] != self.trees.index(t)
            idx = idx[keep]
        return self.points[idx], self.radii[idx]


def _unit(v: np.ndarray) -> np.ndarray:
    n = math.sqrt(float(v @ v))
    return v / n if n > 1e-12 else v


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _perpendicular_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors orthogonal to the unit vector ``d`` and to each other."""
    a = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
    u = _unit(_cross(d, a))
    return u, _cross(d, u)


def murray_split(r0: float, alpha: float) -> tuple[float, float, float, float]:
    """Child radii (r1 >= r2 = alpha * r1) and branching angles (radians) for parent ``r0``."""
    r1 = r0 / (1 + alpha**3) ** (1 / 3)
    r2 = alpha * r1
    c1 = (r0**4 + r1**4 - r2**4) / (2 * r0**2 * r1**2)
    c2 = (r0**4 + r2**4 - r1**4) / (2 * r0**2 * r2**2)
    return r1, r2, float(np.arccos(np.clip(c1, -1, 1))), float(np.arccos(np.clip(c2, -1, 1)))


@dataclass
class TreeGrower:
    """Grows several trees together, generation by generation, in one shared space."""

    domain: Domain
    params: GrowthParams
    rng: np.random.Generator
    occupancy: Occupancy = field(default_factory=Occupancy)
    trees: dict[str, list[Branch]] = field(default_factory=dict)
    _uids: dict[tuple[str, int], int] = field(default_factory=dict)
    _children: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    _roots: dict[str, list[int]] = field(default_factory=dict)
    _queue: list = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    _counter: int = 0

    def add_fixed(self, tree: str, branch: Branch) -> None:
        """Register a pre-built branch (e.g. the IVC or the portal trunk)."""
        self.trees.setdefault(tree, []).append(branch)
        uid = len(self._uids)
        self._uids[(tree, branch.id)] = uid
        self.occupancy.add(branch.points, branch.radii, uid, tree)

    def push(self, seed: Seed) -> None:
        heapq.heappush(self._queue, (seed.generation + seed.rank, self._counter, seed))
        self._counter += 1

    def run(self) -> dict[str, list[Branch]]:
        while self._queue:
            _, _, seed = heapq.heappop(self._queue)
            self._grow(seed)
        return self.trees

    def _grow(self, seed: Seed) -> None:
        p, prm, dom = seed.start.astype(float), self.params, self.domain
        d = _unit(seed.direction.astype(float))
        length = seed.length or prm.length_factor * seed.radius * float(self.rng.uniform(0.8, 1.25))
        exclude: set[int] = set()
        if seed.parent_id is not None:
            exclude.add(self._uids[(seed.tree, seed.parent_id)])
            exclude.update(self._children.get((seed.tree, seed.parent_id), []))
        if seed.exclude_roots:
            exclude.update(self._roots.get(seed.tree, []))
        reach = length + seed.radius + 2 * prm.step + self.occupancy.max_radius + prm.clearance + 4
        near_p, near_r = self.occupancy.near(p, reach, exclude, seed.exclude_trees)
        pts, rad = [p.copy()], [seed.radius]
        n_steps = int(math.ceil(length / prm.step - 1e-9))
        wander = prm.wander * self.rng.standard_normal((n_steps, 3))
        completed, push = True, None
        for n in range(n_steps):
            arc = n * prm.step
            r = seed.radius * (1 - prm.taper * arc / length)
            d = d + wander[n]
            if seed.target is not None:
                d = d + 0.12 * _unit(seed.target - p)
            constrained = arc >= seed.free_length
            if constrained:
                if dom.depth(p + d * (r + 2 * prm.step)) < r + prm.margin + 1.0:
                    d = d + 0.6 * dom.inward(p)
                if push is not None:
                    d = d + 0.5 * push
            d = _unit(d)
            nxt = p + prm.step * d
            push = None
            if constrained:
                if dom.depth(nxt) < 0.75 * r + prm.margin:
                    completed = False
                    self._count("stop_surface")
                    break
                if len(near_p):
                    off = nxt - near_p
                    d2 = np.einsum("ij,ij->i", off, off)
                    if np.any(d2 < (near_r + r + prm.clearance) ** 2):
                        completed = False
                        self._count("stop_collision")
                        break
                    close = d2 < (near_r + r + prm.clearance + 3.0) ** 2
                    if np.any(close):
                        push = _unit(np.sum(off[close] / np.sqrt(d2[close])[:, None], axis=0))
            p = nxt
            pts.append(p)
            rad.append(r)
        if len(pts) < 2:
            self._count("discarded")
            return
        tree = self.trees.setdefault(seed.tree, [])
        branch = Branch(len(tree), seed.parent_id, seed.generation, np.array(pts), np.array(rad), seed.name)
        tree.append(branch)
        uid = len(self._uids)
        self._uids[(seed.tree, branch.id)] = uid
        if seed.parent_id is not None:
            self._children.setdefault((seed.tree, seed.parent_id), []).append(uid)
        else:
            self._roots.setdefault(seed.tree, []).append(uid)
        self.occupancy.add(branch.points, branch.radii, uid, seed.tree)
        if completed and seed.generation < prm.max_generation:
            self._bifurcate(seed, branch, d)

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _bifurcate(self, seed: Seed, parent: Branch, d: np.ndarray) -> None:
        prm, dom = self.params, self.domain
        r0, p = float(parent.radii[-1]), parent.points[-1]
        alpha = float(self.rng.uniform(0.35, 1.0))
        r1, r2, t1, t2 = murray_split(r0, alpha)
        if r2 < prm.r_min:  # prefer a more symmetric split over losing the thin child
            r1, r2, t1, t2 = murray_split(r0, 1.0)
        if r2 < prm.r_min:
            self._count("end_radius")
            return
        t1 += float(self.rng.normal(0, 0.1))
        t2 += float(self.rng.normal(0, 0.1))
        u, v = _perpendicular_basis(d)
        phi0 = float(self.rng.uniform(0, 2 * np.pi))
        probe_reach = prm.length_factor * r1 * 0.6 + r1 * 2
        near_p, near_r = self.occupancy.near(
            p, probe_reach * 2 + 10, {self._uids[(seed.tree, parent.id)]}, ()
        )
        # candidate bifurcation planes around the parent direction; probe both children ahead
        phis = phi0 + np.arange(6) * (np.pi / 3)
        normals = np.cos(phis)[:, None] * u + np.sin(phis)[:, None] * v
        dirs = np.stack(
            [np.cos(t1) * d + np.sin(t1) * normals, np.cos(t2) * d - np.sin(t2) * normals], axis=1
        )
        rc = np.array([r1, r2])
        probe_len = (prm.length_factor * 0.6 * rc)[None, :, None]
        far, mid = p + dirs * probe_len, p + dirs * (0.5 * probe_len)
        score = np.array(
            [
                [
                    min(dom.depth(far[a, c]) - rc[c], 15.0) + min(dom.depth(mid[a, c]) - rc[c], 15.0)
                    for c in range(2)
                ]
                for a in range(len(phis))
            ]
        )
        if len(near_p):
            off = far[:, :, None, :] - near_p[None, None]
            gap = np.sqrt(np.einsum("abnk,abnk->abn", off, off)) - near_r - rc[None, :, None]
            score += 0.5 * np.minimum(gap.min(axis=2), 15.0)
        total = score.min(axis=1) + self.rng.uniform(0, 1.0, len(phis))
        best = dirs[int(np.argmax(total))]
        for c, r in zip(best, (r1, r2), strict=True):
            self.push(Seed(seed.tree, p.copy(), c, r, seed.generation + 1, parent.id, rank=seed.rank))


def paint_tubes(label: np.ndarray, grid: Grid, branches: list[Branch], value: int, chunk: int = 12) -> None:
    """Set ``value`` where a voxel centre is within the interpolated radius of a branch segment.

    Segments are processed ``chunk`` at a time inside the chunk's bounding box, vectorised
    over (segment, z, y, x). The voxel containing each centreline point is marked as well, so
    thin vessels stay connected.
    """
    for br in branches:
        pts, rad = br.points, br.radii
        for s0 in range(0, len(pts) - 1, chunk):
            a, b = pts[s0 : s0 + chunk + 1][:-1], pts[s0 + 1 : s0 + chunk + 1]
            ra, rb = rad[s0 : s0 + len(b)], rad[s0 + 1 : s0 + len(b) + 1]
            rmax = float(max(ra.max(), rb.max()))
            sl = grid.box(np.minimum(a.min(0), b.min(0)) - rmax, np.maximum(a.max(0), b.max(0)) + rmax)
            if sl is None:
                continue
            z, y, x = grid.coords(sl)
            a32, seg = a.astype(np.float32), (b - a).astype(np.float32)
            len2 = np.maximum(np.sum(seg**2, axis=1), np.float32(1e-9))

            def col(v: np.ndarray) -> np.ndarray:
                return v[:, None, None, None]

            dx, dy, dz = x[None] - col(a32[:, 0]), y[None] - col(a32[:, 1]), z[None] - col(a32[:, 2])
            sx, sy, sz = col(seg[:, 0]), col(seg[:, 1]), col(seg[:, 2])
            t = np.clip((dx * sx + dy * sy + dz * sz) / col(len2), 0, 1)
            d2 = (dx - t * sx) ** 2 + (dy - t * sy) ** 2 + (dz - t * sz) ** 2
            r0 = col(ra.astype(np.float32))
            rt = r0 + t * (col(rb.astype(np.float32)) - r0)
            inside = np.any(d2 <= rt * rt, axis=0)
            label[sl][inside] = value
        ijk = np.rint(grid.to_index(pts)).astype(int)
        ok = np.all((ijk >= 0) & (ijk < np.asarray(grid.size)), axis=1)
        ijk = ijk[ok]
        label[ijk[:, 2], ijk[:, 1], ijk[:, 0]] = value
