"""Write a reconstruction to a folder (meshes, scene, centrelines, territories, PNG, report) or a zip."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from .. import imageio
from ..atomic import atomic_write_bytes
from ..labels import BY_NAME
from . import exports, scene
from .html import report_html
from .pipeline import OPACITY, TREES, Reconstruction

MESH_FORMATS = ("stl", "obj", "vtp")
ZIP_PATTERNS = ("scene.gltf", "meshes/*.vtp", "centerlines.vtp", "centerlines.json", "territories.nii.gz",
                "report.json", "report.html", "rendering.png")


def scene_items(rec: Reconstruction, with_centerlines: bool = False) -> list[scene.SceneItem]:
    """Structures in drawing order (opaque first), plus the centreline tubes."""
    items = []
    order = sorted(rec.surfaces, key=lambda n: OPACITY.get(n, 1.0) < 1.0)
    for name in order:
        s = BY_NAME[name]
        items.append(scene.SceneItem(name, s.display, rec.surfaces[name], s.color, OPACITY.get(name, 1.0)))
    if with_centerlines and rec.trees:
        lines = exports.centerline_polydata(rec.trees, {n: BY_NAME[n].value for n in rec.trees})
        if lines.GetNumberOfCells():
            items.append(scene.SceneItem("centerlines", "Vessel centrelines", exports.centerline_tubes(lines),
                                         (0.15, 0.15, 0.15), 1.0))
    return items


def write_outputs(rec: Reconstruction, out_dir: Path, formats: tuple[str, ...] = MESH_FORMATS,
                  png: bool = True) -> dict[str, str]:
    """Write every file of ``rec`` below ``out_dir``; returns {role: relative path} (also in the report)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for name, poly in rec.surfaces.items():
        for fmt in formats:
            if fmt not in MESH_FORMATS:
                raise ValueError(f"unknown mesh format {fmt!r}; use {', '.join(MESH_FORMATS)}")
            rel = f"meshes/{name}.{fmt}"
            exports.write_mesh(poly, out_dir / rel)
            files[f"{name}.{fmt}"] = rel
            rec.report["structures"][name].setdefault("files", []).append(rel)
    if rec.trees:
        lines = exports.centerline_polydata(rec.trees, {n: BY_NAME[n].value for n in TREES if n in rec.trees})
        exports.write_mesh(lines, out_dir / "centerlines.vtp")
        files["centerlines.vtp"] = "centerlines.vtp"
        doc = {"schema": "medseg.recon.centerlines/1", "coordinate_system": "LPS", "units": "mm",
               "trees": {n: t.as_json() for n, t in rec.trees.items()}}
        atomic_write_bytes(out_dir / "centerlines.json", json.dumps(doc).encode())
        files["centerlines.json"] = "centerlines.json"
    if rec.territory_map is not None:
        img = rec.grid.image(rec.territory_map.astype(np.uint16))
        imageio.write_image(img, out_dir / "territories.nii.gz")
        files["territories.nii.gz"] = "territories.nii.gz"
    items = scene_items(rec)
    win = scene.build_scene(items)
    scene.write_gltf(win, items, out_dir / "scene.gltf")
    files["scene.gltf"] = "scene.gltf"
    if png:
        scene.write_png(win, out_dir / "rendering.png")
        files["rendering.png"] = "rendering.png"
    win.Finalize()
    rec.report["files"] = files
    atomic_write_bytes(out_dir / "report.json", json.dumps(rec.report, indent=1).encode())
    files["report.json"] = "report.json"
    atomic_write_bytes(out_dir / "report.html", report_html(rec.report, "rendering.png" if png else None).encode())
    files["report.html"] = "report.html"
    return files


def zip_outputs(out_dir: Path, patterns: tuple[str, ...] = ZIP_PATTERNS) -> bytes:
    """The files of ``out_dir`` matching ``patterns`` as a zip archive (bytes)."""
    buf = io.BytesIO()
    out_dir = Path(out_dir)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for pattern in patterns:
            for path in sorted(out_dir.glob(pattern)):
                zf.write(path, path.relative_to(out_dir).as_posix())
    return buf.getvalue()
