"""Reconstruction of one case: surfaces, vessel trees, planning measures, files.

``reconstruct(label, image=None, classes=None, options=None) -> Reconstruction`` does the work in
memory; ``write_outputs(rec, out_dir)`` writes every file; ``zip_outputs`` packs a folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk

from .. import imageio
from ..labels import BY_NAME, LABELS
from ..vessels.centerline import extract_centerlines
from ..vessels.graph import VesselTree
from ..vessels.grid import Grid, VesselError
from ..vessels.roots import hilum_score, ostium_score
from ..vessels.separate import HEPATIC, PORTAL, auto_seeds, separate_trees
from . import measures
from .surfaces import SurfaceParams, enclosed_volume_ml, open_edges, structure_surface

log = logging.getLogger(__name__)

MIN_VOXELS = 8
TREES = ("portal_vein", "hepatic_veins", "ivc")
OPACITY = {"liver": 0.25}


class ReconError(VesselError):
    """The label map cannot be reconstructed (422)."""


@dataclass
class Reconstruction:
    grid: Grid
    surfaces: dict[str, Any]  # name -> vtkPolyData
    trees: dict[str, VesselTree]
    territory_map: np.ndarray | None
    report: dict
    warnings: list[str] = field(default_factory=list)


def _check_label(label: sitk.Image, image: sitk.Image | None) -> np.ndarray:
    if label.GetDimension() != 3:
        raise ReconError(f"the label map must be 3D, got {label.GetDimension()}D")
    label = imageio.as_label(label, image)  # integer values, geometry of the image
    return sitk.GetArrayFromImage(label)


def _options(options: dict | None) -> dict:
    opts = {"generation": 2, "plane": None, "resect_territories": None, "separate": "auto",
            "smoothing_iterations": SurfaceParams.smoothing_iterations, "decimate": 0.0, "centerlines": True}
    for key, value in (options or {}).items():
        if key not in opts:
            raise ReconError(f"unknown option {key!r}; known: {', '.join(sorted(opts))}")
        opts[key] = value
    if not isinstance(opts["generation"], int) or not 0 <= opts["generation"] <= 20:
        raise ReconError("generation must be an integer from 0 to 20")
    if opts["separate"] not in ("auto", True, False):
        raise ReconError("separate must be true, false or 'auto'")
    if not isinstance(opts["decimate"], (int, float)) or not 0 <= opts["decimate"] < 1:
        raise ReconError("decimate must be a number in [0, 1)")
    if not isinstance(opts["smoothing_iterations"], int) or not 0 <= opts["smoothing_iterations"] <= 200:
        raise ReconError("smoothing_iterations must be an integer from 0 to 200")
    return opts


def _masks(arr: np.ndarray, classes: dict[str, int]) -> tuple[dict[str, np.ndarray], list[str]]:
    unknown = [n for n in classes if n not in BY_NAME]
    if unknown:
        raise ReconError(f"unknown structure(s) {unknown}; known: {', '.join(LABELS)}")
    masks, warnings = {}, []
    for name, value in classes.items():
        m = arr == value
        n = int(m.sum())
        if n == 0:
            continue
        if n < MIN_VOXELS:
            warnings.append(f"{name} has {n} voxel(s) (< {MIN_VOXELS}): skipped")
            continue
        masks[name] = m
    if not masks:
        present = sorted(int(v) for v in np.unique(arr) if v)
        raise ReconError(
            f"nothing to reconstruct: no structure of {', '.join(f'{k}={v}' for k, v in classes.items())} has "
            f"{MIN_VOXELS} voxels or more (label values present: {present[:20] or 'none'})")
    return masks, warnings


def _root_scores(masks: dict[str, np.ndarray], grid: Grid) -> dict[str, np.ndarray | None]:
    scores: dict[str, np.ndarray | None] = {"portal_vein": None, "hepatic_veins": None, "ivc": None}
    liver = masks.get("liver")
    if liver is not None and "portal_vein" in masks:
        scores["portal_vein"] = hilum_score(masks["portal_vein"], liver, grid)
    if "ivc" in masks and "hepatic_veins" in masks:
        scores["hepatic_veins"] = ostium_score(masks["hepatic_veins"], masks["ivc"], grid)
    return scores


def reconstruct(label: sitk.Image, image: sitk.Image | None = None, classes: dict[str, int] | None = None,
                options: dict | None = None) -> Reconstruction:
    """Surfaces, centrelines and measures of a label map (values per ``classes``, default the label table)."""
    t0 = time.perf_counter()
    opts = _options(options)
    classes = dict(classes or LABELS)
    arr = _check_label(label, image)
    grid = Grid.of(label)
    masks, warnings = _masks(arr, classes)
    timings: dict[str, float] = {}

    if opts["separate"] is True or (opts["separate"] == "auto" and "portal_vein" in masks and "hepatic_veins" in masks
                                    and classes["portal_vein"] == classes["hepatic_veins"]):
        vessels = masks.pop("portal_vein", np.zeros(arr.shape, bool)) | masks.pop("hepatic_veins", np.zeros(arr.shape, bool))
        seeds = auto_seeds(vessels, grid, masks.get("liver"), masks.get("ivc"))
        split = separate_trees(vessels, grid, seeds)
        masks["portal_vein"], masks["hepatic_veins"] = split == PORTAL, split == HEPATIC
        warnings.append("portal and hepatic trees separated automatically from their roots")
    timings["prepare_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    sp = SurfaceParams(smoothing_iterations=opts["smoothing_iterations"], decimate=float(opts["decimate"]))
    surfaces = {}
    structures: dict[str, dict] = {}
    for name, m in masks.items():
        poly = structure_surface(m, grid, sp)
        surfaces[name] = poly
        edges = open_edges(poly)
        s = BY_NAME[name]
        structures[name] = {
            "label": classes[name], "display": s.display, "color": list(s.color),
            "snomed": {"code": s.snomed_type[0], "meaning": s.snomed_type[1]},
            "voxels": int(m.sum()), "volume_ml": round(float(m.sum()) * grid.voxel_ml, 3),
            "surface": {"points": poly.GetNumberOfPoints(), "triangles": poly.GetNumberOfPolys(),
                        "watertight": not any(edges.values()), **{f"{k}_edges": v for k, v in edges.items()},
                        "enclosed_volume_ml": round(enclosed_volume_ml(poly), 3)},
        }
    timings["surfaces_s"] = time.perf_counter() - t

    t = time.perf_counter()
    trees: dict[str, VesselTree] = {}
    if opts["centerlines"]:
        scores = _root_scores(masks, grid)
        for name in TREES:
            if name in masks:
                try:
                    trees[name] = extract_centerlines(masks[name], grid, name, root_score=scores[name])
                except VesselError as exc:
                    warnings.append(f"{name} centrelines: {exc}")
    timings["centerlines_s"] = time.perf_counter() - t

    t = time.perf_counter()
    planning, territory_map = _planning(masks, grid, trees, opts, warnings)
    timings["measures_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    report = {
        "schema": "medseg.recon.report/1",
        "coordinate_system": "LPS", "units": "mm",
        "geometry": {"size": list(grid.size), "spacing": list(grid.spacing), "origin": list(grid.origin),
                     "direction": list(grid.direction)},
        "classes": classes, "options": {k: v for k, v in opts.items()},
        "structures": structures,
        "vessels": {name: {**tree.summary(), "bifurcations": tree.bifurcations} for name, tree in trees.items()},
        **planning,
        "warnings": warnings,
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    return Reconstruction(grid, surfaces, trees, territory_map, report, warnings)


def _planning(masks: dict[str, np.ndarray], grid: Grid, trees: dict[str, VesselTree], opts: dict,
              warnings: list[str]) -> tuple[dict, np.ndarray | None]:
    out: dict[str, Any] = {}
    liver = masks.get("liver")
    tumour = masks.get("tumour", np.zeros(grid.shape_zyx, bool))
    if liver is None:
        warnings.append("no liver in the label map: no liver volume, territories or resection")
        out["volumes_ml"] = measures.volumes_ml(masks, grid)
        return out, None
    inside = [m for n, m in masks.items() if n in ("tumour", "portal_vein", "hepatic_veins")]
    organ = measures.liver_organ(liver, inside, grid)
    vols = measures.volumes_ml({"liver_parenchyma": liver, "liver_total": organ, "tumours": tumour}, grid)
    vols.update({n: v for n, v in measures.volumes_ml(masks, grid).items() if n != "liver"})
    out["volumes_ml"] = vols
    vessel_trees = {n: t for n, t in trees.items() if n in ("portal_vein", "hepatic_veins")}
    out["tumours"] = []
    for i, tm in enumerate(measures.tumours(tumour, grid) if tumour.any() else [], start=1):
        centre = grid.zyx_to_mm(np.argwhere(tm).mean(axis=0))[0]
        out["tumours"].append({"id": i, "voxels": int(tm.sum()), "volume_ml": round(float(tm.sum()) * grid.voxel_ml, 3),
                               "centre_mm": np.round(centre, 2).tolist(),
                               "nearest_vessels": measures.tumour_vessel_distances(tm, grid, vessel_trees)})
    territory_map = None
    if "portal_vein" in trees:
        try:
            territory_map, info = measures.territories(organ, grid, trees["portal_vein"], opts["generation"])
            out["territories"] = {"generation": opts["generation"], "labels": {str(k): v for k, v in info.items()}}
        except VesselError as exc:
            warnings.append(f"territories: {exc}")
    if opts["plane"] is not None:
        out["resection"] = measures.resection(organ, tumour, grid, plane=opts["plane"])
    elif opts["resect_territories"] is not None:
        if territory_map is None:
            raise ReconError("resect_territories needs portal territories (a portal vein in the label map)")
        known = set(int(k) for k in out["territories"]["labels"])
        bad = [t for t in opts["resect_territories"] if not isinstance(t, int) or t not in known]
        if bad:
            raise ReconError(f"unknown territories {bad}; territories are {sorted(known)}")
        out["resection"] = measures.resection(organ, tumour, grid, territory_map=territory_map,
                                              resected_territories=opts["resect_territories"])
    return out, territory_map
