"""Reading, validating and writing CT volumes and label maps with SimpleITK.

Every reader checks the header before the pixels are decompressed, so that a small
compressed file that claims a huge volume (a "zip bomb") is refused cheaply.
"""

from __future__ import annotations

import io
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .atomic import atomic_write

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr", ".mha")
MAX_VOXELS = 1024 * 1024 * 1024  # 1 Gi voxels: far above a whole-body CT, far below a bomb.
GEOMETRY_TOL = 1e-3


class ImageError(ValueError):
    """The file is not a usable image; the message says why, for a 4xx answer."""


def image_suffix(name: str) -> str | None:
    """The supported suffix ``name`` ends with (case-insensitive), or ``None``."""
    low = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix):
            return suffix
    return None


def strip_suffix(name: str) -> str:
    """File name without its image suffix (``case.nii.gz`` -> ``case``)."""
    suffix = image_suffix(name)
    return name[: -len(suffix)] if suffix else name


def is_dicom_series_dir(path: Path) -> bool:
    """True when ``path`` is a folder holding a DICOM series."""
    if not path.is_dir():
        return False
    return bool(sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path)))


def _check_header(reader: sitk.ImageFileReader | sitk.ImageSeriesReader, size: tuple[int, ...]) -> None:
    if len(size) != 3:
        raise ImageError(f"expected a 3D volume, got {len(size)} dimensions {tuple(size)}")
    if min(size) < 1:
        raise ImageError(f"empty volume of size {tuple(size)}")
    if int(np.prod(size, dtype=np.int64)) > MAX_VOXELS:
        raise ImageError(f"volume of size {tuple(size)} is larger than the {MAX_VOXELS} voxel limit")


def read_image(path: Path) -> sitk.Image:
    """Read a volume file or a DICOM series folder.

    Raises:
        ImageError: unreadable, not 3D, empty or too large.
    """
    path = Path(path)
    try:
        if path.is_dir():
            series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(path))
            if not series:
                raise ImageError(f"folder {path.name!r} holds no DICOM series")
            files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(path), series[0])
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            if len(files) < 1:
                raise ImageError("empty DICOM series")
            image = reader.Execute()
        else:
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            size = reader.GetSize()
            if len(size) == 4 and size[3] == 1:
                size = size[:3]
            _check_header(reader, size)
            image = reader.Execute()
            if image.GetDimension() == 4:
                image = image[:, :, :, 0]
    except ImageError:
        raise
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = first[-1] if first else "unreadable"
        raise ImageError(f"cannot read image {path.name!r}: {detail[:300]}") from None
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise ImageError("multi-component (vector/RGB) images are not supported")
    _check_header(reader, image.GetSize())
    return image


def read_image_bytes(data: bytes, filename: str) -> sitk.Image:
    """Read an uploaded volume from memory; the file name's suffix selects the format."""
    suffix = image_suffix(filename or "")
    if suffix is None:
        raise ImageError(
            f"unsupported file name {filename!r}: expected one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if not data:
        raise ImageError("empty upload")
    if suffix in (".nii", ".nii.gz"):
        check_nifti_complete(data)
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            return read_image(Path(tmp))
        except ImageError as exc:
            raise ImageError(str(exc).replace(Path(tmp).name, filename)) from None
    finally:
        os.unlink(tmp)


def _gunzip(data: bytes, cap: int) -> bytes:
    """Decompress gzip data, refusing more than ``cap`` bytes of output (a bomb) or a cut stream."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    try:
        out += inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise ImageError(f"corrupt gzip data: {exc}") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise ImageError("compressed upload expands beyond the size limit")
    if not inflater.eof:
        raise ImageError("truncated gzip data: the file is incomplete")
    return bytes(out)


def _nifti_header(head: bytes):
    import nibabel as nib

    sizeof = int(np.frombuffer(head[:4], "<i4")[0]) if len(head) >= 4 else 0
    swapped = int(np.frombuffer(head[:4], ">i4")[0]) if len(head) >= 4 else 0
    klass = nib.Nifti2Header if 540 in (sizeof, swapped) else nib.Nifti1Header
    return klass.from_fileobj(io.BytesIO(head))


def check_nifti_complete(data: bytes) -> None:
    """Check a NIfTI's header and voxel data before ITK reads it.

    ITK's NIfTI reader pads a truncated file with zeros, reads a negative dimension as 1 and turns
    NaN/Inf voxels into 0; a label or CT read that way would silently change, so those are refused
    here. The declared size is checked from the header before anything is decompressed in full.
    """
    if data[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            head = inflater.decompress(data[:65536], 544)
        except zlib.error as exc:
            raise ImageError(f"corrupt gzip data: {exc}") from None
    else:
        head = data[:544]
    if len(head) < 348:
        raise ImageError("truncated NIfTI: the file ends inside its header")
    try:
        header = _nifti_header(head)
        raw_dims = [int(d) for d in header["dim"][1 : int(header["dim"][0]) + 1]]
        shape = header.get_data_shape()
        dtype = header.get_data_dtype()
        offset = int(header.get_data_offset())
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"not a valid NIfTI header: {exc}") from None
    if any(d < 1 for d in raw_dims):
        raise ImageError(f"NIfTI header declares a non-positive dimension {raw_dims}")
    voxels = int(np.prod(shape, dtype=np.int64))
    if int(np.prod(shape[:3], dtype=np.int64)) > MAX_VOXELS:
        raise ImageError(f"volume of size {tuple(shape)} is larger than the {MAX_VOXELS} voxel limit")
    need = offset + voxels * dtype.itemsize
    raw = _gunzip(data, need + (1 << 20)) if data[:2] == b"\x1f\x8b" else data
    if len(raw) < need:
        raise ImageError(f"truncated NIfTI: {len(raw)} bytes of data, the header declares {need}")
    if dtype.kind == "f":
        values = np.frombuffer(raw, dtype=dtype, count=voxels, offset=offset)
        if not np.isfinite(values).all():
            raise ImageError("image contains NaN or infinite values")


def check_finite(image: sitk.Image) -> None:
    """Refuse NaN or infinite voxels (only float images can hold them)."""
    if image.GetPixelID() in (sitk.sitkFloat32, sitk.sitkFloat64):
        arr = sitk.GetArrayViewFromImage(image)
        if not np.isfinite(arr).all():
            raise ImageError("image contains NaN or infinite values")


def same_geometry(a: sitk.Image, b: sitk.Image, tol: float = GEOMETRY_TOL) -> bool:
    """True when two images share size, spacing, origin and direction (within ``tol``)."""
    if a.GetSize() != b.GetSize():
        return False
    return (
        np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=tol, atol=tol)
        and np.allclose(a.GetOrigin(), b.GetOrigin(), rtol=tol, atol=max(tol, 1e-2))
        and np.allclose(a.GetDirection(), b.GetDirection(), atol=tol)
    )


def as_label(label: sitk.Image, reference: sitk.Image | None = None) -> sitk.Image:
    """Validate a label map and return it as uint8 (or uint16 when values exceed 255).

    Raises:
        ImageError: non-integer or negative values, NaN, or geometry different from ``reference``.
    """
    check_finite(label)
    if reference is not None and not same_geometry(label, reference):
        raise ImageError(
            "label geometry does not match its image: "
            f"label size {label.GetSize()} spacing {_fmt(label.GetSpacing())} origin {_fmt(label.GetOrigin())}, "
            f"image size {reference.GetSize()} spacing {_fmt(reference.GetSpacing())} "
            f"origin {_fmt(reference.GetOrigin())}"
        )
    arr = sitk.GetArrayViewFromImage(label)
    if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
        raise ImageError("label values must be whole numbers")
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if lo < 0:
        raise ImageError(f"label values must not be negative (found {lo:g})")
    if hi > 65535:
        raise ImageError(f"label value {hi:g} is too large")
    pixel = sitk.sitkUInt8 if hi <= 255 else sitk.sitkUInt16
    out = sitk.Cast(label, pixel)
    if reference is not None:
        out.CopyInformation(reference)
    return out


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"


def write_image(image: sitk.Image, path: Path) -> Path:
    """Write ``image`` atomically (compressed); the suffix of ``path`` selects the format."""
    path = Path(path)
    suffix = image_suffix(path.name) or path.suffix
    return atomic_write(path, lambda tmp: sitk.WriteImage(image, str(tmp), True), suffix=suffix)


def image_to_bytes(image: sitk.Image, suffix: str = ".nii.gz") -> bytes:
    """Serialise ``image`` to the bytes of a file with the given suffix."""
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    os.close(fd)
    try:
        sitk.WriteImage(image, tmp, True)
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def describe(image: sitk.Image) -> dict:
    """Geometry summary stored as image info (what MONAI Label clients show)."""
    return {
        "size": list(image.GetSize()),
        "spacing": [float(s) for s in image.GetSpacing()],
        "origin": [float(o) for o in image.GetOrigin()],
        "direction": [float(d) for d in image.GetDirection()],
        "pixel_type": image.GetPixelIDTypeAsString(),
    }
