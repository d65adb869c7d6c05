"""Compare an extracted vessel tree with ground-truth centrelines (the phantom JSON format).

Definitions (also printed by the benchmark):
- a branch's *own* points are those farther from its first point (the bifurcation) than the
  parent's radius there, i.e. outside the parent's lumen;
- a truth branch is *resolvable* when its mean radius is at least one voxel (smallest spacing)
  and its own part is at least two voxels (largest spacing) long;
- a resolvable truth branch is *detected* when at least half of its own points lie within
  ``max(truth radius, largest spacing)`` of the extracted centrelines (recall);
- an extracted branch is *correct* when at least half of its own points lie within that
  tolerance of any truth centreline (precision); the others are *spurious*;
- centreline and radius errors are measured at the points of correct branches against the
  nearest point of the densely resampled truth.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .graph import VesselTree


def _dense(points: np.ndarray, radius: np.ndarray, step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return points[:1], radius[:1]
    at = np.linspace(0, arc[-1], max(2, int(arc[-1] / step) + 1))
    pts = np.stack([np.interp(at, arc, points[:, a]) for a in range(3)], axis=1)
    return pts, np.interp(at, arc, radius)


def _own(points: np.ndarray, parent_radius: float) -> np.ndarray:
    keep = np.linalg.norm(points - points[0], axis=1) > parent_radius
    return points[keep]


def truth_arrays(branches: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """All truth centreline points (dense) and their radii."""
    pts, rad = [], []
    for b in branches:
        p, r = _dense(np.asarray(b["points_mm"], float), np.asarray(b["radius_mm"], float))
        pts.append(p)
        rad.append(r)
    return np.concatenate(pts), np.concatenate(rad)


def compare(tree: VesselTree, truth: list[dict], spacing: tuple[float, float, float]) -> dict:
    """Recall, precision, spurious branches, centreline and radius errors of ``tree``."""
    smax, smin = max(spacing), min(spacing)
    t_pts, t_rad = truth_arrays(truth)
    t_kd = cKDTree(t_pts)
    by_id = {b["id"]: b for b in truth}
    e_pts_list, e_rad_list = [], []
    for b in tree.branches:
        p, r = _dense(b.points_mm, b.radius_mm)
        e_pts_list.append(p)
        e_rad_list.append(r)
    e_pts = np.concatenate(e_pts_list)
    e_kd = cKDTree(e_pts)

    resolvable = detected = 0
    for b in truth:
        pts = np.asarray(b["points_mm"], float)
        rad = np.asarray(b["radius_mm"], float)
        parent_r = float(by_id[b["parent_id"]]["radius_mm"][-1]) if b.get("parent_id") is not None else 0.0
        own = _own(pts, parent_r)
        length = float(np.linalg.norm(np.diff(own, axis=0), axis=1).sum()) if len(own) > 1 else 0.0
        if rad.mean() < smin or length < 2 * smax:
            continue
        resolvable += 1
        tol = np.maximum(rad[-len(own):], smax)
        d, _ = e_kd.query(own)
        detected += bool(np.mean(d <= tol) >= 0.5)

    ids = tree.by_id()
    correct = 0
    errs, rad_err, rad_rel = [], [], []
    for b in tree.branches:
        parent_r = float(ids[b.parent_id].radius_mm[-1]) if b.parent_id is not None else 0.0
        own_mask = np.linalg.norm(b.points_mm - b.points_mm[0], axis=1) > parent_r
        if b.parent_id is None:
            own_mask[:] = True
        if not own_mask.any():
            continue
        d, j = t_kd.query(b.points_mm[own_mask])
        tol = np.maximum(t_rad[j], smax)
        if np.mean(d <= tol) >= 0.5:
            correct += 1
            errs.append(d)
            rad_err.append(np.abs(b.radius_mm[own_mask] - t_rad[j]))
            rad_rel.append(np.abs(b.radius_mm[own_mask] - t_rad[j]) / t_rad[j])
    n = len(tree.branches)
    errs_a = np.concatenate(errs) if errs else np.array([np.nan])
    rad_a = np.concatenate(rad_err) if rad_err else np.array([np.nan])
    rel_a = np.concatenate(rad_rel) if rad_rel else np.array([np.nan])
    return {
        "truth_branches": len(truth), "resolvable_truth_branches": resolvable, "detected": detected,
        "recall": round(detected / resolvable, 4) if resolvable else None,
        "extracted_branches": n, "correct_branches": correct, "spurious_branches": n - correct,
        "precision": round(correct / n, 4) if n else None,
        "centerline_error_mean_mm": round(float(np.mean(errs_a)), 3),
        "centerline_error_max_mm": round(float(np.max(errs_a)), 3),
        "radius_error_mean_mm": round(float(np.mean(rad_a)), 3),
        "radius_error_mean_rel": round(float(np.mean(rel_a)), 3),
    }
