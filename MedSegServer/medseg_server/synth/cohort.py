"""Writing phantoms to disk (atomically) and generating seeded cohorts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medseg_server.atomic import atomic_write, atomic_write_bytes

from .phantom import Phantom, make_phantom
from .variation import sample_variation

GROUND_TRUTH_DIR = "ground_truth"


def case_paths(out_dir: Path, case_id: str) -> dict[str, Path]:
    """Where :func:`write_case` puts the files of ``case_id``."""
    out_dir = Path(out_dir)
    gt = out_dir / GROUND_TRUTH_DIR
    return {
        "image": out_dir / f"{case_id}.nii.gz",
        "label": gt / f"{case_id}.label.nii.gz",
        "centerlines": gt / f"{case_id}.centerlines.json",
    }


def write_case(phantom: Phantom, out_dir: Path, case_id: str) -> dict[str, Path]:
    """Write ``<case_id>.nii.gz``, ``ground_truth/<case_id>.label.nii.gz`` and ``.centerlines.json``.

    Each file is written to a temporary file in its folder, fsynced and renamed into place.
    Ground truth is written first and the image last, so a visible image implies its ground truth.
    """
    paths = case_paths(out_dir, case_id)
    doc = {**phantom.centerlines, "case_id": case_id, "meta": phantom.meta}
    atomic_write_bytes(paths["centerlines"], json.dumps(doc, separators=(",", ":")).encode())
    atomic_write(paths["label"], lambda tmp: sitk.WriteImage(phantom.label, str(tmp), True))
    atomic_write(paths["image"], lambda tmp: sitk.WriteImage(phantom.image, str(tmp), True))
    return paths


def case_seed(seed: int, index: int) -> int:
    """Seed of case ``index`` of a cohort generated with ``seed`` (stable across runs)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def make_cohort(
    out_dir: Path,
    cases: int,
    seed: int,
    shape: tuple[int, int, int] = (256, 256, 96),
    spacing: tuple[float, float, float] = (1.5, 1.5, 2.5),
    varied: bool = False,
    phases: Sequence[str] | None = None,
) -> list[str]:
    """Generate and write ``cases`` phantoms ``synth_000``, ``synth_001``, ...; returns the case ids.

    ``varied``: each case also gets a random contrast phase, dose, body size and field of view
    (:func:`.variation.sample_variation`, seeded by the case seed); otherwise all are standard scans.
    ``phases``: the contrast phase of each case (one per case; implies ``varied``), e.g. to build a
    cohort with a chosen phase mix; the other variation is drawn as with ``varied``.
    """
    if phases is not None and len(phases) != int(cases):
        raise ValueError(f"phases must name one phase per case ({cases}), got {len(phases)}")
    ids = []
    for index in range(int(cases)):
        case_id = f"synth_{index:03d}"
        cs = case_seed(seed, index)
        forced = None if phases is None else phases[index]
        variation = sample_variation(np.random.default_rng([cs, 7919]), forced) \
            if varied or phases is not None else None
        write_case(make_phantom(cs, shape, spacing, variation=variation), Path(out_dir), case_id)
        ids.append(case_id)
    return ids
