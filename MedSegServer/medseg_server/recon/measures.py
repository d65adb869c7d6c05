"""Surgical planning measures: volumes, tumour-to-vessel distances, portal territories, resection."""

from __future__ import annotations

import cc3d
import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..vessels.graph import VesselTree
from ..vessels.grid import Grid, VesselError, ball


def liver_organ(liver: np.ndarray, inside: list[np.ndarray], grid: Grid) -> np.ndarray:
    """The whole liver: parenchyma plus the tumours and vessel voxels enclosed by it.

    A structure voxel counts as liver when it lies inside the parenchyma closed by a ~10 mm ball
    (so the intrahepatic vessels count, the extrahepatic portal trunk and IVC do not)."""
    liver = np.asarray(liver, bool)
    organ = liver.copy()
    for m in inside:
        organ |= np.asarray(m, bool)
    if not liver.any():
        return organ
    zs, ys, xs = np.nonzero(organ)
    pad = int(np.ceil(12 / min(grid.spacing))) + 1
    crop = tuple(slice(max(0, int(a.min()) - pad), int(a.max()) + pad + 1) for a in (zs, ys, xs))
    hull = ndimage.binary_closing(np.pad(liver[crop], pad), ball(10.0, grid.spacing_zyx))
    hull = ndimage.binary_fill_holes(hull)[tuple(slice(pad, -pad) for _ in range(3))]
    out = liver.copy()
    out[crop] |= hull & organ[crop]
    return out


def volumes_ml(masks: dict[str, np.ndarray], grid: Grid) -> dict[str, float]:
    """Voxel count x voxel volume, in millilitres."""
    return {name: round(float(np.count_nonzero(m)) * grid.voxel_ml, 3) for name, m in masks.items()}


def tumours(mask: np.ndarray, grid: Grid) -> list[np.ndarray]:
    """Tumour components (26-connected) as boolean masks, largest first."""
    labels = cc3d.connected_components(np.asarray(mask, bool), connectivity=26)
    counts = np.bincount(labels.ravel())[1:]
    return [labels == (i + 1) for i in np.argsort(-counts)]


def tumour_vessel_distances(tumour: np.ndarray, grid: Grid, trees: dict[str, VesselTree]) -> dict[str, dict]:
    """Per tree: the branch whose wall comes closest to the tumour, with the distance (mm).

    Distance to the wall = distance from the tumour's boundary voxels to the centreline point
    minus the radius there (0 when the vessel touches or runs through the tumour)."""
    boundary = tumour & ~ndimage.binary_erosion(tumour)
    pts = grid.zyx_to_mm(np.argwhere(boundary))
    out = {}
    for name, tree in trees.items():
        if not tree.branches:
            continue
        cl = np.concatenate([b.points_mm for b in tree.branches])
        rad = np.concatenate([b.radius_mm for b in tree.branches])
        owner = np.concatenate([np.full(len(b.points_mm), b.id) for b in tree.branches])
        kd = cKDTree(pts)
        d_cl, _ = kd.query(cl)
        wall = d_cl - rad
        i = int(np.argmin(wall))
        b = tree.by_id()[int(owner[i])]
        out[name] = {"distance_to_wall_mm": round(max(0.0, float(wall[i])), 2),
                     "distance_to_centerline_mm": round(float(d_cl[i]), 2),
                     "branch_id": b.id, "generation": b.generation,
                     "radius_mm": round(float(rad[i]), 2), "point_mm": np.round(cl[i], 2).tolist()}
    return out


def territories(organ: np.ndarray, grid: Grid, portal: VesselTree, generation: int) -> tuple[np.ndarray, dict[int, dict]]:
    """Portal vascular territories: every liver voxel goes to the nearest centreline point of a
    branch of ``generation`` or deeper, and takes the label of that branch's ancestor at
    ``generation``. Returns (label map uint16, {label: {"branch_id", "voxels"}})."""
    if generation < 0:
        raise VesselError("generation must be 0 or more")
    supplying = [b for b in portal.branches if b.generation >= generation]
    if not supplying:
        raise VesselError(f"the portal tree has no branch of generation {generation} "
                          f"(deepest: {max((b.generation for b in portal.branches), default=-1)})")
    heads = sorted({portal.ancestor_at(b.id, generation) for b in supplying})
    label_of = {h: i + 1 for i, h in enumerate(heads)}
    pts = np.concatenate([b.points_mm[1:] if b.parent_id is not None and len(b.points_mm) > 1 else b.points_mm
                          for b in supplying])
    owner = np.concatenate([np.full(len(b.points_mm) - (1 if b.parent_id is not None and len(b.points_mm) > 1 else 0),
                                    label_of[portal.ancestor_at(b.id, generation)]) for b in supplying])
    vox = np.argwhere(organ)
    _, j = cKDTree(pts).query(grid.zyx_to_mm(vox))
    out = np.zeros(organ.shape, np.uint16)
    out[tuple(vox.T)] = owner[j]
    counts = np.bincount(out[tuple(vox.T)], minlength=len(heads) + 1)
    info = {lab: {"branch_id": h, "voxels": int(counts[lab]), "volume_ml": round(float(counts[lab]) * grid.voxel_ml, 3)}
            for h, lab in label_of.items()}
    return out, info


def resection(organ: np.ndarray, tumour: np.ndarray, grid: Grid, plane: dict | None = None,
              territory_map: np.ndarray | None = None, resected_territories: list[int] | None = None) -> dict:
    """Resected and remnant volumes and the future liver remnant (FLR).

    ``plane``: ``{"point": [x, y, z], "normal": [nx, ny, nz]}`` in LPS mm; the side the normal
    points to is resected. Or ``resected_territories``: labels of ``territory_map`` to remove.
    FLR % = remnant functional volume / total functional volume, functional = liver minus tumour.
    """
    organ = np.asarray(organ, bool)
    if plane is not None:
        try:
            point = np.asarray(plane["point"], float).reshape(3)
            normal = np.asarray(plane["normal"], float).reshape(3)
        except (KeyError, TypeError, ValueError):
            raise VesselError('plane must be {"point": [x, y, z], "normal": [nx, ny, nz]}') from None
        if not np.isfinite(point).all() or not np.isfinite(normal).all() or np.linalg.norm(normal) == 0:
            raise VesselError("plane point and normal must be finite, the normal non-zero")
        vox = np.argwhere(organ)
        side = (grid.zyx_to_mm(vox) - point) @ normal > 0
        resected = np.zeros_like(organ)
        resected[tuple(vox[side].T)] = True
        how = {"plane": {"point": point.tolist(), "normal": (normal / np.linalg.norm(normal)).tolist()}}
    elif resected_territories is not None and territory_map is not None:
        resected = organ & np.isin(territory_map, list(resected_territories))
        how = {"territories": [int(t) for t in resected_territories]}
    else:
        raise VesselError("a resection needs a plane or a list of territories")
    tumour = np.asarray(tumour, bool) & organ
    total = organ.sum()
    functional = total - tumour.sum()
    remnant = organ & ~resected
    remnant_functional = (remnant & ~tumour).sum()
    v = grid.voxel_ml
    return {
        **how,
        "total_ml": round(float(total) * v, 2), "resected_ml": round(float(resected.sum()) * v, 2),
        "remnant_ml": round(float(remnant.sum()) * v, 2), "functional_total_ml": round(float(functional) * v, 2),
        "remnant_functional_ml": round(float(remnant_functional) * v, 2),
        "flr_percent": round(float(100.0 * remnant_functional / functional), 2) if functional else None,
        "tumour_resected_ml": round(float((tumour & resected).sum()) * v, 2),
        "tumour_left_ml": round(float((tumour & ~resected).sum()) * v, 2),
    }
