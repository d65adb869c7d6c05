"""The only part of MedSegLib that touches MRML (``slicer``): nodes <-> numpy, SimpleITK and files.

Works inside Slicer and with the ``slicer-core`` PyPI package (MRML without the application);
functions take the scene or nodes explicitly and never use ``slicer.mrmlScene`` or ``slicer.app``.
"""

from __future__ import annotations

_CONVERTERS_REGISTERED = False

_RULES = (
    "vtkBinaryLabelmapToClosedSurfaceConversionRule",
    "vtkClosedSurfaceToBinaryLabelmapConversionRule",
    "vtkClosedSurfaceToFractionalLabelmapConversionRule",
    "vtkFractionalLabelmapToClosedSurfaceConversionRule",
)


def ensure_converters() -> None:
    """Register the segmentation representation converters (the Slicer application does it at start).

    Without them a segmentation cannot even hold a binary labelmap under ``slicer-core``. Rules that
    are already registered (inside Slicer) are left alone.
    """
    global _CONVERTERS_REGISTERED
    if _CONVERTERS_REGISTERED:
        return
    import slicer

    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    present = {rule.GetClassName() for rule in _registered_rules(factory)}
    for name in _RULES:
        if name not in present and hasattr(slicer, name):
            factory.RegisterConverterRule(getattr(slicer, name)())
    _CONVERTERS_REGISTERED = True


def _registered_rules(factory) -> list:
    rules = factory.GetConverterRules()
    return list(rules) if rules is not None else []
