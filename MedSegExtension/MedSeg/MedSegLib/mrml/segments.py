"""Segmentation nodes: server labels in, one segment updated in place, label out, ``.seg.nrrd``.

Segment IDs are the server's label names (``liver``, ``portal_vein``...), segment names the MedSeg
display names, colours and terminology from :mod:`MedSegLib.labels`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import slicer
import slicer.util
import vtk
from vtk.util import numpy_support

from ..geometry import Grid, check_same_grid, image_from_array
from ..labels import SegmentSpec, segment_specs, structure_for, terminology_entry
from . import ensure_converters
from .volumes import numpy_to_matrix, volume_grid

TERMINOLOGY_TAG = "TerminologyEntry"

#: Segments painted for a scribbles model; never submitted as labels.
SCRIBBLE_SEGMENTS = {"foreground_scribbles": (0.2, 0.9, 0.2), "background_scribbles": (0.9, 0.2, 0.2)}


def segment_terminology(segment) -> str:
    """The segment's terminology string ("" when it has none)."""
    value = vtk.reference("")
    return str(value) if segment.GetTag(TERMINOLOGY_TAG, value) else ""


def _logic():
    return slicer.vtkSlicerSegmentationsModuleLogic


def oriented_mask(mask_kji: np.ndarray, grid: Grid):
    """A ``vtkOrientedImageData`` (uint8) of a ``[k, j, i]`` mask on ``grid``."""
    mask = np.ascontiguousarray(mask_kji, dtype=np.uint8)
    if mask.shape != tuple(reversed(grid.dims)):
        raise ValueError(f"mask shape {mask.shape} does not match the volume {tuple(reversed(grid.dims))}")
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(*grid.dims)
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())[:] = mask.ravel()
    image.SetImageToWorldMatrix(numpy_to_matrix(grid.ijk_to_ras))
    return image


def ensure_segment(segmentation_node, spec: SegmentSpec) -> str:
    """The segment for ``spec`` (ID = label name), created empty if missing; name, colour, terminology set."""
    ensure_converters()
    segmentation = segmentation_node.GetSegmentation()
    segment = segmentation.GetSegment(spec.name)
    if segment is None:
        segmentation.AddEmptySegment(spec.name, spec.display, list(spec.color))
        segment = segmentation.GetSegment(spec.name)
    else:
        segment.SetName(spec.display)
        segment.SetColor(*spec.color)
    if spec.structure is not None:
        segment.SetTag(TERMINOLOGY_TAG, terminology_entry(spec.structure))
    return spec.name


def set_segment_mask(segmentation_node, segment_id: str, mask_kji: np.ndarray, grid: Grid) -> None:
    """Replace a segment's voxels by ``mask_kji`` (on the volume grid)."""
    ensure_converters()
    image = oriented_mask(mask_kji, grid)
    logic = _logic()
    if not logic.SetBinaryLabelmapToSegment(image, segmentation_node, segment_id, logic.MODE_REPLACE, image.GetExtent()):
        raise RuntimeError(f"could not update segment {segment_id!r}")


def load_label(segmentation_node, label: sitk.Image, volume_node, label_names=None) -> list[str]:
    """Fill the segmentation with every labelled structure of a server label image.

    ``label_names`` is the server's ``{name: value}`` (``None`` = MedSeg table). One segment per
    name, also for values absent from the image (so clicks can target them). Returns segment IDs.

    Raises:
        ValueError: the label is not on the volume's grid.
    """
    grid = volume_grid(volume_node)
    check_same_grid(label, grid)
    array = sitk.GetArrayViewFromImage(label)
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    ids = []
    with _batch(segmentation_node):
        for spec in segment_specs(label_names):
            ids.append(ensure_segment(segmentation_node, spec))
            set_segment_mask(segmentation_node, spec.name, array == spec.value, grid)
    return ids


def update_segment_from_label(
    segmentation_node, segment_id: str, label: sitk.Image, volume_node, value: int | None = None
) -> int:
    """Update one segment in place from an interactive answer; returns its voxel count.

    The segment takes the voxels equal to ``value`` (default: any non-zero voxel); other segments
    are left as they are.
    """
    grid = volume_grid(volume_node)
    check_same_grid(label, grid)
    array = sitk.GetArrayViewFromImage(label)
    mask = array == value if value is not None else array > 0
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        spec = next((s for s in segment_specs({segment_id: value or 1})), None)
        if spec is None:
            raise ValueError(f"cannot make a segment called {segment_id!r}")
        ensure_segment(segmentation_node, spec)
    set_segment_mask(segmentation_node, segment_id, mask, grid)
    return int(mask.sum())


def segment_mask(segmentation_node, segment_id: str, volume_node) -> np.ndarray:
    """A segment as a boolean ``[k, j, i]`` array on the volume grid."""
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    return _export(segmentation_node, ids, volume_node) > 0


def segment_mask_or_empty(segmentation_node, segment_id: str, volume_node) -> np.ndarray:
    """:func:`segment_mask`, or an empty mask when the segmentation has no such segment (or no voxel)."""
    segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
    if segment is None:
        return np.zeros(tuple(reversed(volume_grid(volume_node).dims)), bool)
    mask = segment_mask(segmentation_node, segment_id, volume_node)
    if mask.shape != tuple(reversed(volume_grid(volume_node).dims)):  # nothing painted yet
        return np.zeros(tuple(reversed(volume_grid(volume_node).dims)), bool)
    return mask


def clear_segments(segmentation_node, segment_ids, volume_node) -> None:
    """Empty the given segments (those that exist), keeping them with their names and colours."""
    grid = volume_grid(volume_node)
    empty = np.zeros(tuple(reversed(grid.dims)), bool)
    for segment_id in segment_ids:
        if segmentation_node.GetSegmentation().GetSegment(segment_id) is not None:
            set_segment_mask(segmentation_node, segment_id, empty, grid)


def _export(segmentation_node, ids, volume_node) -> np.ndarray:
    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "MedSegExport")
    try:
        if not _logic().ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, volume_node):
            raise RuntimeError("exporting the segmentation to a labelmap failed")
        return slicer.util.arrayFromVolume(labelmap).copy()
    finally:
        scene.RemoveNode(labelmap)


def label_values(segmentation_node, label_names=None, include_scribbles: bool = False) -> dict[str, int]:
    """Label value of each segment ID: from ``label_names``, else the MedSeg table, else by order.

    Scribble segments are left out unless ``include_scribbles`` (or named in ``label_names``).
    """
    names = dict(label_names or {})
    segmentation = segmentation_node.GetSegmentation()
    out: dict[str, int] = {}
    used = set(names.values())
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        if segment_id in SCRIBBLE_SEGMENTS and segment_id not in names and not include_scribbles:
            continue
        if segment_id in names:
            out[segment_id] = int(names[segment_id])
            continue
        structure = structure_for(segment_id) or structure_for(segmentation.GetSegment(segment_id).GetName())
        value = structure.value if structure is not None and structure.value not in used else max([0, *used]) + 1
        out[segment_id] = value
        used.add(value)
    return out


def label_image(segmentation_node, volume_node, label_names=None) -> sitk.Image:
    """The segmentation as one label image on the volume grid, with the server's label values.

    Segments are painted by increasing value, so a vessel or tumour inside the liver keeps its value.
    """
    values = label_values(segmentation_node, label_names)
    grid = volume_grid(volume_node)
    out = np.zeros(tuple(reversed(grid.dims)), np.uint8)
    ordered = sorted(values.items(), key=lambda kv: kv[1])
    if ordered:
        ids = vtk.vtkStringArray()
        for segment_id, _ in ordered:
            ids.InsertNextValue(segment_id)
        exported = _export(segmentation_node, ids, volume_node)  # values 1..n in ``ordered`` order
        for position, (_, value) in enumerate(ordered, 1):
            if value > 255:
                raise ValueError(f"label value {value} does not fit in uint8")
            out[exported == position] = value
    return image_from_array(out, grid.ijk_to_ras)


def add_scribble_segments(segmentation_node, volume_node) -> list[str]:
    """Empty foreground/background scribble segments to paint in the Segment Editor."""
    segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(volume_node)
    ids = []
    for name, color in SCRIBBLE_SEGMENTS.items():
        spec = SegmentSpec(0, name, name.replace("_", " ").capitalize(), color, None)
        ids.append(ensure_segment(segmentation_node, spec))
    return ids


def snapshot(segmentation_node):
    """A deep copy of the segmentation (for undo)."""
    copy = slicer.vtkSegmentation()
    copy.DeepCopy(segmentation_node.GetSegmentation())
    return copy


def restore(segmentation_node, copy) -> None:
    """Put back a :func:`snapshot`."""
    segmentation_node.GetSegmentation().DeepCopy(copy)
    segmentation_node.Modified()


def write_seg_nrrd(segmentation_node, path: str | Path) -> Path:
    """Save as Slicer's ``.seg.nrrd`` (segment names, colours, terminology kept)."""
    ensure_converters()
    path = Path(path)
    if not path.name.endswith(".seg.nrrd"):
        raise ValueError("segmentation files end with .seg.nrrd")
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(segmentation_node):
        raise OSError(f"could not write {path}")
    return path


def read_seg_nrrd(scene, path: str | Path, name: str | None = None):
    """Load a ``.seg.nrrd`` into a new segmentation node."""
    ensure_converters()
    path = Path(path)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or path.name[: -len(".seg.nrrd")])
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        raise OSError(f"could not read segmentation {path}")
    node.CreateDefaultDisplayNodes()
    return node


def load_labelmap_as_segmentation(scene, label: sitk.Image, volume_node, names: dict[str, int], node_name: str):
    """A new segmentation node from a labelmap with arbitrary ``{name: value}`` (e.g. territories)."""
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", node_name)
    node.CreateDefaultDisplayNodes()
    load_label(node, label, volume_node, names)
    return node


class _batch:
    """Group segment changes into one Modified event."""

    def __init__(self, node) -> None:
        self.node = node

    def __enter__(self):
        self.was = self.node.StartModify()
        return self

    def __exit__(self, *exc) -> None:
        self.node.EndModify(self.was)
