"""Acquisition and patient variation of a phantom: contrast phase, dose, kernel, body habitus, field of view.

Without a :class:`Variation` every phantom is a portal-venous scan at a standard dose, centred in
the field of view, of a body scaled only to fit the grid. Real cohorts are not that uniform, so a
cohort can be drawn with ``sample_variation``:

- contrast phase: ``non_contrast`` (vessels slightly darker than the liver), ``arterial`` (bright
  aorta, partly enhanced portal vein, unenhanced hepatic veins, hyper-vascular tumours) or
  ``portal_venous`` (the default tables of :mod:`.intensity`);
- dose: white noise from 8 to 40 HU std (log-uniform), reconstruction blur 0.5-1.1 voxel;
- patient size: the whole anatomy scaled by 0.85-1.1, subcutaneous fat x 0.5-1.8;
- field of view: the volume shifted by up to +-15 mm (x, y) and +-30 mm (z) against the anatomy,
  so the liver dome or tip may be cut off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .geometry import Grid
from .intensity import HU_RANGES, TUMOUR_HU, Tissue

PHASES = ("non_contrast", "arterial", "portal_venous")
PHASE_WEIGHTS = (0.25, 0.25, 0.5)

# HU ranges that differ from the portal-venous table, per phase.
PHASE_HU: dict[str, dict[Tissue, tuple[float, float]]] = {
    "non_contrast": {
        Tissue.LIVER: (50, 65), Tissue.PORTAL_VEIN: (35, 45), Tissue.HEPATIC_VEIN: (35, 45), Tissue.IVC: (35, 45),
        Tissue.AORTA: (35, 45), Tissue.KIDNEY: (28, 38), Tissue.SPLEEN: (42, 50), Tissue.HEART: (35, 45),
    },
    "arterial": {
        Tissue.LIVER: (60, 75), Tissue.PORTAL_VEIN: (110, 160), Tissue.HEPATIC_VEIN: (55, 75), Tissue.IVC: (60, 90),
        Tissue.AORTA: (250, 350), Tissue.KIDNEY: (180, 250), Tissue.SPLEEN: (100, 140), Tissue.HEART: (200, 300),
    },
    "portal_venous": {},
}
PHASE_TUMOUR_HU: dict[str, dict[str, tuple[float, float]]] = {
    "non_contrast": {"hypo": (20.0, 40.0), "hyper": (70.0, 90.0)},
    "arterial": {"hypo": (30.0, 45.0), "hyper": (120.0, 170.0)},
    "portal_venous": dict(TUMOUR_HU),
}


@dataclass(frozen=True)
class Variation:
    """How one phantom departs from the standard scan (see the module docstring)."""

    phase: str = "portal_venous"
    noise_std: float = 12.5
    blur_sigma: float = 0.7
    body_scale: float = 1.0
    fat_scale: float = 1.0
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise ValueError(f"phase must be one of {', '.join(PHASES)}")
        if not (0 <= self.noise_std <= 200 and 0 <= self.blur_sigma <= 3 and 0.5 <= self.body_scale <= 1.5
                and 0.2 <= self.fat_scale <= 3):
            raise ValueError(f"variation out of range: {self}")

    def hu_ranges(self) -> dict[Tissue, tuple[float, float]]:
        """Per-tissue HU ranges of this phase (same keys and order as :data:`HU_RANGES`)."""
        return {t: PHASE_HU[self.phase].get(t, r) for t, r in HU_RANGES.items()}

    def tumour_hu(self) -> dict[str, tuple[float, float]]:
        return PHASE_TUMOUR_HU[self.phase]

    def grid(self, grid: Grid) -> Grid:
        """``grid`` moved by ``shift_mm`` (the anatomy stays around the physical origin)."""
        origin = tuple(o + d for o, d in zip(grid.origin, self.shift_mm, strict=True))
        return Grid(grid.size, grid.spacing, (origin[0], origin[1], origin[2]))

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def sample_variation(rng: np.random.Generator, phase: str | None = None) -> Variation:
    """A random realistic variation (phase 25 % non-contrast, 25 % arterial, 50 % portal venous).

    ``phase`` forces the contrast phase; the phase is still drawn (and discarded), so dose, size
    and field of view are the same as without it for the same ``rng``.
    """
    drawn = PHASES[int(rng.choice(len(PHASES), p=PHASE_WEIGHTS))]
    if phase is not None and phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}")
    return Variation(
        phase=phase or drawn,
        noise_std=round(float(np.exp(rng.uniform(np.log(8.0), np.log(40.0)))), 2),
        blur_sigma=round(float(rng.uniform(0.5, 1.1)), 3),
        body_scale=round(float(rng.uniform(0.85, 1.1)), 3),
        fat_scale=round(float(rng.uniform(0.5, 1.8)), 3),
        shift_mm=tuple(round(float(v), 1) for v in rng.uniform([-15, -15, -30], [15, 15, 30])),
    )
