"""The structures MedSeg segments: label values, display names, colours and Slicer terminology.

One table shared by the server, the phantom generator, the reconstruction and the Slicer
module, so a segment has the same value, name and colour everywhere. Codes are SNOMED CT, as
used by Slicer's default "Segmentation category and type" terminology.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Structure:
    """One segmentable structure."""

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

LABELS: dict[str, int] = {s.name: s.value for s in STRUCTURES}
BY_VALUE: dict[int, Structure] = {s.value: s for s in STRUCTURES}
BY_NAME: dict[str, Structure] = {s.name: s for s in STRUCTURES}


def parse_classes(text: str) -> dict[str, int]:
    """Parse ``"liver=5,portal_vein=64"`` into ``{"liver": 5, "portal_vein": 64}``."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if not name or not value.strip().isdigit():
            raise ValueError(f"class {part!r} is not NAME=VALUE")
        out[name.strip()] = int(value)
    return out
