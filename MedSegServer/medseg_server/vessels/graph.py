"""The vessel tree as a graph: branches between the root, bifurcations and end points.

A tree is built from a rooted forest of centreline nodes given by parent pointers (what the
centreline tracer produces). A *branch* is a maximal chain of nodes between two graph nodes
(root, bifurcation or end point); its first point is the bifurcation it starts from, so a
child branch shares its first point with the last point of its parent (as in the phantom's
ground-truth JSON). The generation of a root branch is 0 and grows by one per bifurcation.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Branch:
    """One centreline segment between two graph nodes."""

    id: int
    parent_id: int | None
    generation: int
    points_mm: np.ndarray  # (N, 3) LPS mm
    points_zyx: np.ndarray  # (N, 3) voxel index, array order
    radius_mm: np.ndarray  # (N,)
    children: list[int] = field(default_factory=list)

    @property
    def length_mm(self) -> float:
        return float(np.linalg.norm(np.diff(self.points_mm, axis=0), axis=1).sum()) if len(self.points_mm) > 1 else 0.0

    def as_json(self) -> dict:
        return {
            "id": self.id, "parent_id": self.parent_id, "generation": self.generation,
            "children": list(self.children), "length_mm": round(self.length_mm, 3),
            "mean_radius_mm": round(float(np.mean(self.radius_mm)), 3),
            "points_mm": np.round(self.points_mm, 3).tolist(),
            "points_ijk": np.round(self.points_zyx[:, ::-1], 3).tolist(),
            "radius_mm": np.round(self.radius_mm, 3).tolist(),
        }


@dataclass
class VesselTree:
    """Branches of one vessel tree (possibly several roots, e.g. three hepatic veins)."""

    name: str
    branches: list[Branch]

    @property
    def roots(self) -> list[Branch]:
        return [b for b in self.branches if b.parent_id is None]

    def by_id(self) -> dict[int, Branch]:
        return {b.id: b for b in self.branches}

    @property
    def bifurcations(self) -> list[dict]:
        """Nodes where a branch splits: position, parent branch and child branches."""
        out = []
        for b in self.branches:
            if len(b.children) >= 2:
                out.append({"parent_id": b.id, "children": list(b.children), "generation": b.generation,
                            "point_mm": np.round(b.points_mm[-1], 3).tolist(),
                            "radius_mm": round(float(b.radius_mm[-1]), 3)})
        return out

    def descendants(self, branch_id: int) -> list[int]:
        """``branch_id`` and every branch below it."""
        ids = self.by_id()
        out, todo = [], [branch_id]
        while todo:
            bid = todo.pop()
            out.append(bid)
            todo.extend(ids[bid].children)
        return out

    def ancestor_at(self, branch_id: int, generation: int) -> int | None:
        """The branch of ``generation`` on the path from the root to ``branch_id`` (None if shallower)."""
        ids = self.by_id()
        b = ids[branch_id]
        if b.generation < generation:
            return None
        while b.generation > generation and b.parent_id is not None:
            b = ids[b.parent_id]
        return b.id

    def summary(self) -> dict:
        lengths = [b.length_mm for b in self.branches]
        gens = [b.generation for b in self.branches]
        return {
            "branches": len(self.branches), "roots": len(self.roots),
            "bifurcations": len(self.bifurcations),
            "end_points": sum(1 for b in self.branches if not b.children),
            "max_generation": max(gens) if gens else 0,
            "total_length_mm": round(float(sum(lengths)), 2),
        }

    def as_json(self) -> dict:
        return {"name": self.name, "summary": self.summary(), "bifurcations": self.bifurcations,
                "branches": [b.as_json() for b in self.branches]}


def tree_from_parents(name: str, parent: np.ndarray, zyx: np.ndarray, mm: np.ndarray, radius: np.ndarray,
                      smooth: int = 1) -> VesselTree:
    """Split a node forest (``parent[i]`` = index of the parent node, -1 for a root) into branches.

    ``smooth`` is the half-width of a moving average applied to the inner points of each branch
    (voxel staircase removal); end points stay where they are so branches stay connected.
    """
    n = len(parent)
    children: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        if parent[i] >= 0:
            children[int(parent[i])].append(i)
    branches: list[Branch] = []
    # a stack of (start node, parent branch id, generation); a branch is start -> ... -> next graph node
    todo: list[tuple[int, int | None, int]] = []
    for r in (i for i in range(n) if parent[i] < 0):
        todo.append((r, None, 0))
    while todo:
        start, parent_id, gen = todo.pop()
        chain = [start]
        node = start
        while len(children[node]) == 1:
            node = children[node][0]
            chain.append(node)
        if parent_id is not None:
            chain.insert(0, int(parent[start]))
        bid = len(branches)
        idx = np.asarray(chain)
        branches.append(Branch(bid, parent_id, gen, _smooth(mm[idx], smooth), zyx[idx].astype(float),
                               radius[idx].astype(float)))
        if parent_id is not None:
            branches[parent_id].children.append(bid)
        if len(children[node]) >= 2:
            for c in children[node]:
                todo.append((c, bid, gen + 1))
    return VesselTree(name, branches)


def _smooth(points: np.ndarray, half: int) -> np.ndarray:
    if half <= 0 or len(points) < 3:
        return points.astype(float)
    pad = np.pad(points.astype(float), ((half, half), (0, 0)), mode="edge")
    kernel = np.ones(2 * half + 1) / (2 * half + 1)
    out = np.stack([np.convolve(pad[:, a], kernel, mode="valid") for a in range(3)], axis=1)
    out[0], out[-1] = points[0], points[-1]
    return out
