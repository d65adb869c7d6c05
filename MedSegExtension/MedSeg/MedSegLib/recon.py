"""Reconstruction bundles (meshes + report) without Slicer: unpack, find what is inside, tabulate.

A bundle is a zip (the answer of ``POST /recon/{image}``) or a folder holding surface meshes
(``.vtp .vtk .stl .obj .ply .gltf .glb``), optionally centerlines (a mesh whose name contains
``centerline``), a report JSON (``report.json`` or any ``*.json`` with measures) and a territories
labelmap (``*territor*.nii.gz|.nrrd``). File stems name the structures (``liver.vtp``,
``portal_vein.stl``, ``portal_vein_centerlines.vtp``). A combined ``scene.gltf`` is only used when
there is no per-structure mesh. Mesh coordinates are LPS (Slicer's file convention and the
server's) unless the report says ``"coordinate_system": "RAS"``.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .labels import Structure, structure_for

MESH_SUFFIXES = (".vtp", ".vtk", ".stl", ".obj", ".ply", ".gltf", ".glb")
LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".mha")
MAX_UNPACKED_BYTES = 2 << 30


class BundleError(ValueError):
    """A reconstruction bundle that cannot be used (bad zip, unsafe paths, nothing inside)."""


@dataclass(frozen=True)
class MeshEntry:
    """One mesh file of a bundle."""

    path: Path
    name: str  # file stem, e.g. "portal_vein_centerlines"
    structure: Structure | None
    centerline: bool

    @property
    def display(self) -> str:
        if self.structure is None:
            return "Vessel centerlines" if self.name.lower() == "centerlines" else self.name.replace("_", " ").capitalize()
        return f"{self.structure.display} centerlines" if self.centerline else self.structure.display

    @property
    def opacity(self) -> float:
        """Liver semi-transparent so vessels and tumours inside stay visible."""
        return 0.35 if (self.structure and self.structure.name == "liver" and not self.centerline) else 1.0


@dataclass
class ReconBundle:
    """What a bundle holds, on disk."""

    folder: Path
    meshes: list[MeshEntry] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    territories: Path | None = None

    @property
    def coordinate_system(self) -> str:
        """``LPS`` or ``RAS``: the frame of the mesh files."""
        return str(self.report.get("coordinate_system", "LPS")).upper()

    def territory_names(self, values: list[int]) -> dict[str, int]:
        """Segment names of the territory label values (from the report when it names them)."""
        labels = (self.report.get("territories") or {}).get("labels") if isinstance(self.report.get("territories"), dict) else None
        names = {}
        for value in values:
            info = (labels or {}).get(str(value)) or {}
            name = info.get("name") or info.get("branch") if isinstance(info, dict) else None
            names[str(name) if name else f"territory_{value}"] = int(value)
        return names

    def measure_rows(self) -> list[tuple[str, str, str]]:
        """The report as (structure, measure, value) rows for a table."""
        return measure_rows(self.report)


def _suffix(path: PurePosixPath | Path) -> str:
    name = path.name.lower()
    for suffix in sorted({*MESH_SUFFIXES, *LABEL_SUFFIXES, ".json"}, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _stem(path: Path) -> str:
    return path.name[: len(path.name) - len(_suffix(path))]


def unpack(data: bytes | str | Path, folder: Path) -> Path:
    """Extract a zip (bytes or path) safely into ``folder`` (no absolute or ``..`` paths, size-capped)."""
    source = io.BytesIO(data) if isinstance(data, bytes) else Path(data)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(source) as archive:
            total = 0
            for member in archive.infolist():
                name = PurePosixPath(member.filename.replace("\\", "/"))
                if name.is_absolute() or ".." in name.parts:
                    raise BundleError(f"unsafe path in reconstruction zip: {member.filename!r}")
                total += member.file_size
                if total > MAX_UNPACKED_BYTES:
                    raise BundleError("reconstruction zip unpacks to more than 2 GiB")
                if member.is_dir():
                    continue
                target = folder.joinpath(*name.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as dst:
                    dst.write(src.read())
    except zipfile.BadZipFile as exc:
        raise BundleError(f"the reconstruction answer is not a zip file: {exc}") from None
    return folder


def read_bundle(source: bytes | str | Path, workdir: Path | None = None) -> ReconBundle:
    """Read a bundle from a zip (bytes or file) or a folder; zips are extracted into ``workdir``."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        folder = Path(source)
    else:
        if workdir is None:
            raise BundleError("a folder to extract the zip into is needed")
        folder = unpack(source, Path(workdir))
    bundle = ReconBundle(folder)
    reports = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        suffix = _suffix(path)
        stem = _stem(path)
        if suffix in MESH_SUFFIXES:
            centerline = "centerline" in stem.lower()
            base = stem.lower().replace("_centerlines", "").replace("_centerline", "").replace("centerlines_", "")
            bundle.meshes.append(MeshEntry(path, stem, structure_for(base), centerline))
        elif suffix == ".json":
            reports.append(path)
        elif suffix in LABEL_SUFFIXES and "territor" in stem.lower():
            bundle.territories = path
    for path in sorted(reports, key=lambda p: (p.name != "report.json", p.name)):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BundleError(f"{path.name} is not valid JSON: {exc}") from None
        if isinstance(doc, dict) and path.name != "centerlines.json":
            bundle.report = doc
            break
    if any(m.name.lower() != "scene" for m in bundle.meshes):
        bundle.meshes = [m for m in bundle.meshes if m.name.lower() != "scene"]  # the combined scene
    if not bundle.meshes and not bundle.report:
        raise BundleError(f"no meshes ({', '.join(MESH_SUFFIXES)}) and no report in the reconstruction")
    return bundle


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value) and len(value) <= 4:
        return ", ".join(_fmt(v) for v in value)
    return str(value)


#: Report keys that are not measures (bookkeeping, geometry, display).
SKIPPED_KEYS = frozenset({
    "schema", "coordinate_system", "units", "geometry", "classes", "options", "files", "timings",
    "color", "snomed", "display", "label", "labels",
})


def measure_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Flatten a report into (structure, measure, value) rows.

    ``{"structures": {"liver": {"volume_ml": 1500}}}`` and ``{"liver": {"volume_ml": 1500}}`` both give
    ``("Liver", "volume_ml", "1500")``; deeper nesting joins keys with ``/``; lists of objects are
    numbered (``1/distance_mm``). Bookkeeping keys and large arrays (points) are skipped.
    """
    rows: list[tuple[str, str, str]] = []

    def walk(structure: str, prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in SKIPPED_KEYS:
                    walk(structure, f"{prefix}/{key}" if prefix else str(key), item)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value, 1):
                walk(structure, f"{prefix}/{i}" if prefix else str(i), item)
        elif isinstance(value, list) and (len(value) > 4 or any(isinstance(v, (dict, list)) for v in value)):
            return
        elif value is not None and value != []:
            rows.append((structure, prefix, _fmt(value)))

    def label_of(key: str) -> str:
        known = structure_for(key)
        return known.display if known else key.replace("_", " ")

    for key, value in (report or {}).items():
        key = str(key)
        if key in SKIPPED_KEYS:
            continue
        if key == "structures" and isinstance(value, dict):
            for name, item in value.items():
                walk(label_of(str(name)), "", item)
        elif isinstance(value, (dict, list)):
            walk(label_of(key), "", value)
        elif value is not None:
            rows.append(("", key, _fmt(value)))
    return rows
