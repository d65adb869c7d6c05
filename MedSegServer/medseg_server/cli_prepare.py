"""``medseg prepare-cohort``: the demo studies folder ``make run`` serves.

A few synthetic phantoms plus the real CT sample shipped in ``Resources/SampleData`` (its
TotalSegmentator labels remapped to MedSeg's label table, kept in ``ground_truth/`` so the
server sees only the image). Safe to run again: existing cases are kept.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .imageio import write_image
from .labels import LABELS

# TotalSegmentator's 117-class map -> MedSeg's table.
TOTALSEG_TO_MEDSEG = {5: LABELS["liver"], 64: LABELS["portal_vein"], 63: LABELS["ivc"]}


def sample_data_dir() -> Path:
    """``Resources/SampleData`` of the source tree (the server is installed editable from it)."""
    return Path(__file__).resolve().parents[2] / "Resources" / "SampleData"


def remap_labels(label: sitk.Image, mapping: dict[int, int]) -> sitk.Image:
    """Map label values through ``mapping``; values not in it become 0."""
    arr = sitk.GetArrayFromImage(label)
    out = np.zeros(arr.shape, np.uint8)
    for src, dst in mapping.items():
        out[arr == src] = dst
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(label)
    return img


def add_real_sample(out: Path) -> str | None:
    """Copy the real CT sample and its notice into ``out``; returns its image ID."""
    src = sample_data_dir() / "totalseg"
    ct = src / "example_ct.nii.gz"
    if not ct.exists():
        return None
    image_id = "totalseg_example"
    target = out / f"{image_id}.nii.gz"
    if not target.exists():
        shutil.copyfile(ct, target)
        truth = remap_labels(sitk.ReadImage(str(src / "example_seg_fast_force_split.nii.gz")), TOTALSEG_TO_MEDSEG)
        write_image(truth, out / "ground_truth" / f"{image_id}.label.nii.gz")
        shutil.copyfile(sample_data_dir() / "NOTICE.md", out / "ground_truth" / "NOTICE-totalseg.md")
    return image_id


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-cohort", help="prepare the demo studies folder (phantoms + real CT sample)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--cases", type=int, default=3, help="synthetic phantoms to add")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .synth.cohort import case_seed, write_case
    from .synth.phantom import make_phantom

    args.out.mkdir(parents=True, exist_ok=True)
    made = []
    for index in range(args.cases):
        case_id = f"synth_{index:03d}"
        if not (args.out / f"{case_id}.nii.gz").exists():
            write_case(make_phantom(case_seed(args.seed, index)), args.out, case_id)
            made.append(case_id)
    real = add_real_sample(args.out)
    print(f"studies folder {args.out}: {len(made)} new phantoms" + (f", real CT '{real}'" if real else ""))
    return 0
