"""Label maps <-> DICOM Segmentation objects (``highdicom``), on the grid of a CT series.

A label map is a uint8 SimpleITK volume on the CT's grid whose values follow :mod:`labels`. Each
value becomes one segment with its name, colour and SNOMED CT codes; reading maps segments back
to values by code (current SCT or the retired SRT codes older tools write) or by name.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from .. import __version__
from ..labels import BY_VALUE, STRUCTURES, Structure
from .errors import InvalidUpload

ANATOMY = Code("91723000", "SCT", "Anatomical Structure")
LESION = Code("49755003", "SCT", "Morphologically Altered Structure")
TISSUE = Code("85756007", "SCT", "Tissue")
# retired SNOMED RT codes (scheme "SRT") still written by older tools such as dcmqi's examples
SRT_ALIASES = {"T-62000": "10200004", "T-48810": "32764006", "T-48720": "8993003", "T-48710": "64131007"}
UNKNOWN_BASE = 100  # segments not in the label table get values from here on


def slice_indices(ref: sitk.Image, sources: list[pydicom.Dataset]) -> list[int]:
    """Index along the volume's third axis of each single-frame source image (by its position)."""
    out = []
    for ds in sources:
        pos = [float(v) for v in ds.ImagePositionPatient]
        idx = ref.TransformPhysicalPointToContinuousIndex(pos)
        k = int(round(idx[2]))
        if abs(idx[2] - k) > 0.05 or abs(idx[0]) > 0.05 or abs(idx[1]) > 0.05 or not 0 <= k < ref.GetSize()[2]:
            raise InvalidUpload(f"source image {ds.SOPInstanceUID} does not lie on the volume's grid")
        out.append(k)
    return out


def _clean_source(ds: pydicom.Dataset) -> pydicom.Dataset:
    """A header-only copy that highdicom accepts (empty character set removed, no pixel data)."""
    out = copy.copy(ds)
    for keyword in ("PixelData", "SpecificCharacterSet"):
        if keyword in out and (keyword == "PixelData" or not str(out.get(keyword) or "").strip()):
            delattr(out, keyword)
    return out


def _description(number: int, value: int, algorithm: str):
    import highdicom as hd

    known = BY_VALUE.get(value)
    if known is None:
        label, category, ptype, color = f"Label {value}", TISSUE, TISSUE, None
    else:
        label = known.display
        category = LESION if known.name == "tumour" else ANATOMY
        ptype = Code(known.snomed_type[0], "SCT", known.snomed_type[1])
        color = hd.color.CIELabColor.from_rgb(*(int(round(c * 255)) for c in known.color))
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=label,
        segmented_property_category=category,
        segmented_property_type=ptype,
        algorithm_type=algorithm,
        display_color=color,
        tracking_id=f"medseg-value-{value}",
        tracking_uid=generate_uid(),
    )


def label_to_seg(
    label: sitk.Image,
    sources: list[pydicom.Dataset],
    series_number: int = 9001,
    creator: str = "",
    description: str = "MedSeg label",
) -> pydicom.Dataset:
    """A DICOM SEG (BINARY) of ``label`` referencing the CT ``sources`` it was drawn on."""
    import highdicom as hd

    arr = sitk.GetArrayFromImage(label)
    values = [int(v) for v in np.unique(arr) if v != 0]
    if not values:
        raise InvalidUpload("the label is empty: nothing to store as a DICOM SEG")
    remap = np.zeros(int(arr.max()) + 1, dtype=np.uint8)
    for number, value in enumerate(values, start=1):
        remap[value] = number
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if (cols, rows) != tuple(label.GetSize()[:2]):
        raise InvalidUpload(f"label size {label.GetSize()} does not match the DICOM images ({cols}x{rows})")
    frames = remap[arr[slice_indices(label, sources)]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # highdicom's remarks on the source's person names
        return _build_seg(hd, [_clean_source(ds) for ds in sources], frames, values, series_number, creator,
                          description)


def _build_seg(hd, sources, frames, values, series_number, creator, description) -> pydicom.Dataset:
    return hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_description(n, v, "MANUAL") for n, v in enumerate(values, start=1)],
        series_instance_uid=generate_uid(),
        series_number=series_number,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="MedSeg",
        manufacturer_model_name="MedSeg server",
        software_versions=__version__,
        device_serial_number="0",
        content_description=description[:64],
        content_creator_name=creator[:64] or None,
        content_label="MEDSEG",
    )


def _structure_for(desc) -> Structure | None:
    ptype = desc.segmented_property_type
    code = SRT_ALIASES.get(ptype.value, ptype.value) if ptype.scheme_designator in ("SRT", "SNM3") else ptype.value
    for s in STRUCTURES:
        if s.snomed_type[0] == code:
            return s
    name = str(desc.segment_label).strip().lower()
    for s in STRUCTURES:
        if name in (s.name.replace("_", " "), s.display.lower(), s.name):
            return s
    return None


def segment_values(seg) -> dict[int, int]:
    """Segment number -> label value of the MedSeg table (unknown segments: 100 + number)."""
    out = {}
    for number in seg.segment_numbers:
        s = _structure_for(seg.get_segment_description(number))
        out[number] = s.value if s is not None else UNKNOWN_BASE + number
    return out


def seg_to_label(seg_ds: pydicom.Dataset, ref: sitk.Image, sources: list[pydicom.Dataset]) -> sitk.Image:
    """The label map (uint8, on ``ref``'s grid) of a DICOM SEG drawn on the CT ``sources``."""
    import highdicom as hd

    try:
        seg = hd.seg.Segmentation.from_dataset(seg_ds, copy=False)
    except (AttributeError, ValueError, TypeError) as exc:
        raise InvalidUpload(f"not a usable DICOM Segmentation: {exc}") from None
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    picked = [ds for ds in sources if ds.SOPInstanceUID in referenced]
    if not picked:
        raise InvalidUpload("the DICOM SEG references none of the images of this series")
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[ds.SOPInstanceUID for ds in picked], combine_segments=True, relabel=False,
        skip_overlap_checks=True, ignore_spatial_locations=True,
    )
    values = segment_values(seg)
    lut = np.zeros(max(values) + 1, dtype=np.uint8)
    for number, value in values.items():
        lut[number] = value
    out = np.zeros(sitk.GetArrayViewFromImage(ref).shape, dtype=np.uint8)
    if pixels.shape[1:] != out.shape[1:]:
        raise InvalidUpload(f"DICOM SEG frames {pixels.shape[1:]} do not match the images {out.shape[1:]}")
    out[slice_indices(ref, picked)] = lut[pixels]
    label = sitk.GetImageFromArray(out)
    label.CopyInformation(ref)
    return label
