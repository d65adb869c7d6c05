"""The structures MedSeg segments, as the Slicer module shows them.

The module cannot import the server package, so this is a small copy of
``medseg_server.labels.STRUCTURES`` (a test checks that both tables are equal). Values that the
table does not know (e.g. another model's label values) get a stable fallback colour.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Structure:
    """One segmentable structure: label value, display name, RGB colour (0-1), SNOMED CT type."""

    name: str
    value: int
    display: str
    color: tuple[float, float, float]
    snomed_type: tuple[str, str]  # (code value, code meaning)


STRUCTURES: tuple[Structure, ...] = (
    Structure("liver", 1, "Liver", (0.87, 0.51, 0.40), ("10200004", "Liver")),
    Structure("portal_vein", 2, "Portal vein", (0.00, 0.59, 0.80), ("32764006", "Portal vein")),
    Structure("hepatic_veins", 3, "Hepatic veins", (0.40, 0.25, 0.73), ("8993003", "Hepatic vein")),
    Structure("ivc", 4, "Inferior vena cava", (0.00, 0.30, 0.70), ("64131007", "Inferior vena cava")),
    Structure("tumour", 5, "Liver tumour", (0.93, 0.82, 0.25), ("108369006", "Neoplasm")),
)

BY_NAME: dict[str, Structure] = {s.name: s for s in STRUCTURES}
BY_VALUE: dict[int, Structure] = {s.value: s for s in STRUCTURES}

#: Aliases a server or a file may use for our structures (lower case).
ALIASES: dict[str, str] = {
    "portal vein": "portal_vein",
    "portal_vein_and_splenic_vein": "portal_vein",
    "hepatic vein": "hepatic_veins",
    "hepatic_vein": "hepatic_veins",
    "inferior_vena_cava": "ivc",
    "inferior vena cava": "ivc",
    "tumor": "tumour",
    "liver_tumor": "tumour",
    "liver_tumour": "tumour",
    "liver tumour": "tumour",
}

#: SNOMED CT category of every MedSeg structure ("Anatomical structure"), except tumours.
ANATOMY_CATEGORY = ("123037004", "Anatomical structure")
MORPHOLOGY_CATEGORY = ("49755003", "Morphologically Altered Structure")

_FALLBACK_COLORS = (
    (0.50, 0.68, 0.50), (0.95, 0.61, 0.42), (0.56, 0.79, 0.93), (0.85, 0.40, 0.55),
    (0.70, 0.70, 0.30), (0.40, 0.75, 0.75), (0.75, 0.55, 0.85), (0.60, 0.45, 0.30),
)


def structure_for(name: str) -> Structure | None:
    """The MedSeg structure a segment or file name stands for (``None`` when unknown)."""
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, ALIASES.get(key.replace("_", " "), key))
    if key in BY_NAME:
        return BY_NAME[key]
    for structure in STRUCTURES:  # display names ("Portal vein")
        if structure.display.lower() == name.strip().lower():
            return structure
    return None


def fallback_color(value: int) -> tuple[float, float, float]:
    """A stable colour for a label value the table does not know."""
    return _FALLBACK_COLORS[int(value) % len(_FALLBACK_COLORS)]


@dataclass(frozen=True)
class SegmentSpec:
    """How one label value of a server answer becomes a segment."""

    value: int
    name: str  # segment ID and the server's label name
    display: str
    color: tuple[float, float, float]
    structure: Structure | None


def segment_specs(label_names: dict[str, int] | list[str] | None) -> list[SegmentSpec]:
    """Segments for a server's ``label_names`` (``{name: value}`` or a list whose index+1 is the value).

    Background (value 0 or the name ``background``) is skipped; the result is sorted by value, and
    known structures get the MedSeg display name and colour. ``None`` means the MedSeg table itself.
    """
    if label_names is None:
        pairs = [(s.name, s.value) for s in STRUCTURES]
    elif isinstance(label_names, dict):
        pairs = [(str(k), int(v)) for k, v in label_names.items()]
    else:
        pairs = [(str(name), i + 1) for i, name in enumerate(label_names)]
    specs = []
    for name, value in sorted(pairs, key=lambda p: p[1]):
        if value <= 0 or name.lower() == "background":
            continue
        structure = structure_for(name)
        if structure is not None:
            specs.append(SegmentSpec(value, name, structure.display, structure.color, structure))
        else:
            specs.append(SegmentSpec(value, name, name.replace("_", " ").capitalize(), fallback_color(value), None))
    return specs


def terminology_entry(structure: Structure) -> str:
    """Slicer's terminology string (``vtkSegment`` tag ``TerminologyEntry``) for a structure.

    Format: ``context~category~type~type modifier~anatomic context~region~region modifier``; each
    coded entry is ``scheme^code^meaning``.
    """
    category = MORPHOLOGY_CATEGORY if structure.name == "tumour" else ANATOMY_CATEGORY
    code, meaning = structure.snomed_type
    return (
        "Segmentation category and type - 3D Slicer General Anatomy list"
        f"~SCT^{category[0]}^{category[1]}~SCT^{code}^{meaning}~^^"
        "~Anatomic codes - DICOM master list~^^~^^"
    )
