"""``medseg bench recon``: surfaces and centrelines against known truth, with baselines in the same run.

Surfaces: our VTK pipeline vs Slicer's binary-labelmap -> closed-surface rule (slicer-core),
on the same masks: time, deviation from the label's voxel boundary, watertightness.
Centrelines: our tracer vs scikit-image ``skeletonize`` (3D) turned into a tree the same way,
against the phantom's true centrelines (recall, precision, spurious branches, errors).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REAL_LABELS = Path(__file__).resolve().parents[3] / "Resources" / "SampleData" / "totalseg" / "example_seg_fast_force_split.nii.gz"
REAL_CLASSES = {"liver": 5, "portal_vein": 64, "ivc": 63}


def register_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recon", help="surfaces vs Slicer's conversion, centrelines vs skeletonize")
    p.add_argument("--cases", type=int, default=2, help="synthetic phantoms (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per surface and method (the fastest counts)")
    p.add_argument("--real", type=Path, default=REAL_LABELS, help="real label map (TotalSegmentator values)")
    p.add_argument("--out", type=Path, default=Path("bench-recon.json"))
    p.add_argument("--smp", choices=("Sequential", "STDThread"), default="Sequential",
                   help="vtkSMPTools backend of this process: applies to both methods alike (default Sequential)")
    p.set_defaults(func=run)


def slicer_surface(mask: np.ndarray, grid):
    """Slicer's closed surface of a binary mask (default conversion parameters) and its time."""
    import slicer
    import vtk
    from vtk.util import numpy_support

    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    if not getattr(slicer_surface, "registered", False):
        factory.RegisterConverterRule(slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule())
        slicer_surface.registered = True
    scene = slicer.vtkMRMLScene()
    node = slicer.vtkMRMLSegmentationNode()
    scene.AddNode(node)
    img = slicer.vtkOrientedImageData()
    img.SetDimensions(mask.shape[2], mask.shape[1], mask.shape[0])
    img.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(img.GetPointData().GetScalars())[:] = mask.astype(np.uint8).ravel()
    m = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            m.SetElement(i, j, grid.matrix[i, j])
    img.SetImageToWorldMatrix(m)
    seg = node.GetSegmentation()
    labelmap = slicer.vtkSegmentationConverter.GetSegmentationBinaryLabelmapRepresentationName()
    setter = getattr(seg, "SetSourceRepresentationName", None) or seg.SetMasterRepresentationName
    setter(labelmap)
    segment = slicer.vtkSegment()
    segment.AddRepresentation(labelmap, img)
    seg.AddSegment(segment, "s")
    t = time.perf_counter()
    node.CreateClosedSurfaceRepresentation()
    dt = time.perf_counter() - t
    closed = slicer.vtkSegmentationConverter.GetSegmentationClosedSurfaceRepresentationName()
    return segment.GetRepresentation(closed), dt


def skeleton_tree(mask: np.ndarray, grid, name: str, root_score):
    """Baseline: 3D skeletonize, BFS tree from the root voxel, same branch splitting and radii."""
    from scipy import ndimage
    from scipy.sparse.csgraph import breadth_first_order
    from skimage.morphology import skeletonize

    from ..vessels.centerline import radius_from_wall_distance, voxel_graph, wall_distance
    from ..vessels.graph import tree_from_parents

    skel = skeletonize(mask).astype(bool)
    dbf = wall_distance(mask, grid.spacing_zyx)
    _, coords, length_m, _ = voxel_graph(skel, grid.spacing_zyx, None)
    labels, n = ndimage.label(skel, np.ones((3, 3, 3)))
    parent = np.full(len(coords), -1, np.int64)
    comp = labels[tuple(coords.T)]
    for c in range(1, n + 1):
        idx = np.flatnonzero(comp == c)
        if root_score is not None and np.isfinite(root_score[tuple(coords[idx].T)]).any():
            s = root_score[tuple(coords[idx].T)]
            root = idx[int(np.argmax(np.where(np.isfinite(s), s, -np.inf)))]
        else:
            root = idx[0]
        order, pred = breadth_first_order(length_m, root, directed=False, return_predecessors=True)
        parent[order[1:]] = pred[order[1:]]
    radius = radius_from_wall_distance(dbf[tuple(coords.T)], grid.spacing_zyx)
    return tree_from_parents(name, parent, coords, grid.zyx_to_mm(coords), radius, smooth=1)


def roughness_deg(poly) -> float:
    """Mean angle (degrees) between the normals of triangles sharing an edge: 0 for a plane, large
    for a staircase; reported for both methods so that speed is not bought by smoothing less."""
    from vtk.util import numpy_support

    tri = numpy_support.vtk_to_numpy(poly.GetPolys().GetConnectivityArray()).reshape(-1, 3)
    pts = numpy_support.vtk_to_numpy(poly.GetPoints().GetData()).astype(float)
    n = np.cross(pts[tri[:, 1]] - pts[tri[:, 0]], pts[tri[:, 2]] - pts[tri[:, 0]])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    edges = np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [2, 0]]]), axis=1)
    faces = np.tile(np.arange(len(tri)), 3)
    key = edges[:, 0] * (len(pts) + 1) + edges[:, 1]
    order = np.argsort(key, kind="stable")
    key, faces = key[order], faces[order]
    pair = key[1:] == key[:-1]
    cos = np.einsum("ij,ij->i", n[faces[:-1][pair]], n[faces[1:][pair]])
    return round(float(np.degrees(np.arccos(np.clip(cos, -1, 1))).mean()), 2)


def _surfaces(masks: dict, grid, repeats: int) -> dict:
    """Both methods on each mask, ``repeats`` interleaved runs each; the fastest run of each counts
    (the machine is shared: the minimum is the least disturbed measurement, for both alike)."""
    from ..recon.surfaces import open_edges, structure_surface, surface_deviation

    out = {}
    for name, m in masks.items():
        if m.sum() < 8:
            continue
        t_ours, t_slicer = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            ours = structure_surface(m, grid)
            t_ours.append(time.perf_counter() - t)
            theirs, dt = slicer_surface(m, grid)
            t_slicer.append(dt)
        out[name] = {
            "ours": {"time_s": round(min(t_ours), 4), "time_median_s": round(float(np.median(t_ours)), 4),
                     "triangles": ours.GetNumberOfPolys(), "roughness_deg": roughness_deg(ours),
                     "watertight": not any(open_edges(ours).values()), **surface_deviation(ours, m, grid)},
            "slicer": {"time_s": round(min(t_slicer), 4), "time_median_s": round(float(np.median(t_slicer)), 4),
                       "triangles": theirs.GetNumberOfPolys(), "roughness_deg": roughness_deg(theirs),
                       "watertight": not any(open_edges(theirs).values()), **surface_deviation(theirs, m, grid)},
        }
    return out


def _root_scores(arr: np.ndarray, grid, liver_value: int, ivc_value: int):
    from ..vessels.roots import hilum_score, ostium_score

    liver, ivc = arr == liver_value, arr == ivc_value
    return {"portal_vein": lambda m: hilum_score(m, liver, grid), "hepatic_veins": lambda m: ostium_score(m, ivc, grid)}


def _settings(smp: str) -> dict:
    """Process-wide VTK threading (shared by both methods) and each method's surface parameters."""
    import dataclasses

    import slicer
    import vtk

    from ..recon.surfaces import SurfaceParams

    vtk.vtkSMPTools.SetBackend(smp)
    rule = slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule()
    names = (rule.GetSmoothingFactorParameterName(), rule.GetDecimationFactorParameterName(),
             rule.GetComputeSurfaceNormalsParameterName(), rule.GetConversionMethodParameterName())
    return {"smp_backend": vtk.vtkSMPTools.GetBackend(), "smp_threads": vtk.vtkSMPTools.GetEstimatedNumberOfThreads(),
            "ours": dataclasses.asdict(SurfaceParams()),
            "slicer": {n: rule.GetConversionParameter(n) for n in names}}


def run(args: argparse.Namespace) -> int:
    from ..synth import make_phantom
    from ..vessels.centerline import extract_centerlines
    from ..vessels.evaluate import compare
    from ..vessels.grid import Grid

    results: dict = {"settings": _settings(getattr(args, "smp", "Sequential")), "phantoms": [], "real": None}
    for i in range(args.cases):
        p = make_phantom(args.seed + i)
        arr = sitk.GetArrayFromImage(p.label)
        grid = Grid.of(p.label)
        case = {"seed": args.seed + i, "surfaces": _surfaces(
            {"liver": np.isin(arr, [1, 2, 3, 5]), "portal_vein": arr == 2, "hepatic_veins": arr == 3,
             "ivc": arr == 4, "tumour": arr == 5}, grid, args.repeats), "centerlines": {}}
        scores = _root_scores(arr, grid, 1, 4)
        for name, value in (("portal_vein", 2), ("hepatic_veins", 3)):
            score = scores[name](arr == value)  # the same roots for both methods, not timed
            t = time.perf_counter()
            ours = extract_centerlines(arr == value, grid, name, root_score=score)
            t_ours = time.perf_counter() - t
            t = time.perf_counter()
            base = skeleton_tree(arr == value, grid, name, score)
            t_base = time.perf_counter() - t
            truth = p.centerlines["trees"][name]
            case["centerlines"][name] = {
                "ours": {"time_s": round(t_ours, 3), **compare(ours, truth, grid.spacing)},
                "skeletonize": {"time_s": round(t_base, 3), **compare(base, truth, grid.spacing)}}
        results["phantoms"].append(case)
    if args.real and Path(args.real).exists():
        lab = sitk.ReadImage(str(args.real))
        arr = sitk.GetArrayFromImage(lab)
        grid = Grid.of(lab)
        real = {"file": Path(args.real).name,
                "surfaces": _surfaces({n: arr == v for n, v in REAL_CLASSES.items()}, grid, args.repeats),
                "centerlines": {}}
        scores = _root_scores(arr, grid, REAL_CLASSES["liver"], REAL_CLASSES["ivc"])
        score = scores["portal_vein"](arr == 64)
        ours = extract_centerlines(arr == 64, grid, "portal_vein", root_score=score)
        base = skeleton_tree(arr == 64, grid, "portal_vein", score)
        real["centerlines"]["portal_vein"] = {"ours": ours.summary(), "skeletonize": base.summary()}
        results["real"] = real
    results["summary"] = _summary(results)
    Path(args.out).write_text(json.dumps(results, indent=1))
    _print(results)
    return 0


def _summary(results: dict) -> dict:
    rows = [s for c in results["phantoms"] for s in c["surfaces"].values()]
    if results["real"]:
        rows += list(results["real"]["surfaces"].values())
    t_ours = sum(r["ours"]["time_s"] for r in rows)
    t_slicer = sum(r["slicer"]["time_s"] for r in rows)
    cl = [v for c in results["phantoms"] for v in c["centerlines"].values()]
    return {
        "surface_time_ours_s": round(t_ours, 3), "surface_time_slicer_s": round(t_slicer, 3),
        "speedup_vs_slicer": round(t_slicer / t_ours, 2) if t_ours else None,
        "speedup_vs_slicer_median": round(sum(r["slicer"]["time_median_s"] for r in rows)
                                          / sum(r["ours"]["time_median_s"] for r in rows), 2),
        "max_deviation_voxels_ours": max(r["ours"]["max_voxels"] for r in rows),
        "max_deviation_voxels_slicer": max(r["slicer"]["max_voxels"] for r in rows),
        "mean_deviation_mm_ours": round(float(np.mean([r["ours"]["mean_mm"] for r in rows])), 3),
        "mean_deviation_mm_slicer": round(float(np.mean([r["slicer"]["mean_mm"] for r in rows])), 3),
        "roughness_deg_ours": round(float(np.mean([r["ours"]["roughness_deg"] for r in rows])), 2),
        "roughness_deg_slicer": round(float(np.mean([r["slicer"]["roughness_deg"] for r in rows])), 2),
        "all_watertight_ours": all(r["ours"]["watertight"] for r in rows),
        "all_watertight_slicer": all(r["slicer"]["watertight"] for r in rows),
        "recall_ours": round(float(np.mean([v["ours"]["recall"] for v in cl])), 4) if cl else None,
        "recall_skeletonize": round(float(np.mean([v["skeletonize"]["recall"] for v in cl])), 4) if cl else None,
        "spurious_ours": sum(v["ours"]["spurious_branches"] for v in cl),
        "spurious_skeletonize": sum(v["skeletonize"]["spurious_branches"] for v in cl),
    }


def _print(results: dict) -> None:
    print(f"{'case':<10}{'structure':<15}{'ours s':>8}{'slicer s':>9}{'ours max vox':>13}{'slicer max vox':>15}"
          f"{'ours rough':>11}{'slicer rough':>13}{'tight':>7}")
    cases = [(f"synth{c['seed']}", c) for c in results["phantoms"]]
    if results["real"]:
        cases.append(("real", results["real"]))
    for label, c in cases:
        for name, r in c["surfaces"].items():
            print(f"{label:<10}{name:<15}{r['ours']['time_s']:>8.3f}{r['slicer']['time_s']:>9.3f}"
                  f"{r['ours']['max_voxels']:>13.2f}{r['slicer']['max_voxels']:>15.2f}"
                  f"{r['ours']['roughness_deg']:>11.2f}{r['slicer']['roughness_deg']:>13.2f}"
                  f"{str(r['ours']['watertight'] and r['slicer']['watertight']):>7}")
    print()
    print(f"{'case':<10}{'tree':<15}{'method':<12}{'recall':>7}{'prec':>7}{'branches':>9}{'spurious':>9}"
          f"{'cl mean':>8}{'cl max':>8}{'r err':>7}{'time':>7}")
    for c in results["phantoms"]:
        for tree, v in c["centerlines"].items():
            for method, r in v.items():
                print(f"synth{c['seed']:<5}{tree:<15}{method:<12}{r['recall']:>7.3f}{r['precision']:>7.3f}"
                      f"{r['extracted_branches']:>9}{r['spurious_branches']:>9}{r['centerline_error_mean_mm']:>8.2f}"
                      f"{r['centerline_error_max_mm']:>8.2f}{r['radius_error_mean_mm']:>7.2f}{r['time_s']:>7.2f}")
    if results["real"]:
        for method, s in results["real"]["centerlines"]["portal_vein"].items():
            print(f"real      portal_vein    {method:<12} branches {s['branches']}, bifurcations {s['bifurcations']}")
    print()
    print(json.dumps({"settings": results["settings"], "summary": results["summary"]}, indent=1))


def bench_all(out_dir: Path) -> int:
    """``make bench``: the default recon benchmark, result in ``out_dir/recon.json``."""
    parser = argparse.ArgumentParser()
    register_bench(parser.add_subparsers())
    return run(parser.parse_args(["recon", "--out", str(out_dir / "recon.json")]))
