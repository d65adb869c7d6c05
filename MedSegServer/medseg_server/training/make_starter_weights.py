"""Reproduce the starter weights shipped in ``models/weights/<model>/``.

Trains the small UNet from scratch on seeded synthetic phantoms (``medseg_server.synth``) plus the
real TotalSegmentator sample (labels remapped to the MedSeg table), validates on held-out phantoms
and writes a bundle folder with its model card::

    python -m medseg_server.training.make_starter_weights --out MedSegServer/medseg_server/models/weights/auto_seg
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from ..labels import LABELS
from ..models.bundle import new_bundle, save_bundle
from ..models.networks import pick_device
from .seg_loop import Case, Timer, evaluate, load_case, train_iterations

REPO = Path(__file__).resolve().parents[3]
REAL_SAMPLE = REPO / "Resources" / "SampleData" / "totalseg"
TOTALSEG_TO_MEDSEG = {5: LABELS["liver"], 64: LABELS["portal_vein"], 63: LABELS["ivc"]}
PHANTOM_SHAPE = (128, 128, 48)
PHANTOM_SPACING = (3.0, 3.0, 5.0)


def phantom_cases(folder: Path, count: int, seed: int, cfg: dict, cache: Path) -> list[Case]:
    """Generate ``count`` phantoms (seeded) into ``folder`` and load them on the network grid."""
    from ..synth import make_cohort  # imported late: the generator is only needed here

    ids = make_cohort(folder, count, seed, shape=PHANTOM_SHAPE, spacing=PHANTOM_SPACING)
    return [load_case(folder / f"{i}.nii.gz", folder / "ground_truth" / f"{i}.label.nii.gz", cfg, f"{seed}_{i}",
                      cache_dir=cache) for i in ids]


def real_cases(cfg: dict, cache: Path) -> list[Case]:
    """The real TotalSegmentator sample, when present, remapped to the MedSeg label table."""
    image, label = REAL_SAMPLE / "example_ct.nii.gz", REAL_SAMPLE / "example_seg_fast_force_split.nii.gz"
    if not (image.exists() and label.exists()):
        return []
    return [load_case(image, label, cfg, "totalseg_example", mapping=TOTALSEG_TO_MEDSEG, cache_dir=cache)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    parser.add_argument("--network", default="unet_small")
    parser.add_argument("--train-phantoms", type=int, default=10)
    parser.add_argument("--val-phantoms", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--max-minutes", type=float, default=13.0)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    device = pick_device("auto")
    bundle = new_bundle({"network": args.network})
    cfg = bundle.config
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        train = phantom_cases(work / "train", args.train_phantoms, args.seed, cfg, work / "cache")
        val = phantom_cases(work / "val", args.val_phantoms, args.seed + 1, cfg, work / "cache")
        real = real_cases(cfg, work / "cache")
    clock = Timer()
    deadline = args.max_minutes * 60

    def step(it: int, loss: float) -> bool:
        if it % 50 == 0:
            print(f"iteration {it}/{args.iterations} loss {loss:.3f} ({clock():.0f} s)", flush=True)
        return clock() > deadline

    losses = train_iterations(bundle.net, train + real, cfg, args.iterations, device, lr=2e-3, seed=args.seed,
                              on_step=step)
    seconds = clock()
    metrics = evaluate(bundle.net, val, cfg, device)
    print(f"validation Dice {metrics['dice']:.3f} per class {metrics['per_class']}")
    bundle.card = {
        "name": "MedSeg starter weights (auto_seg)",
        "network": args.network,
        "data": {
            "train": f"{len(train)} synthetic phantoms (medseg_server.synth, seed {args.seed}, "
                     f"shape {PHANTOM_SHAPE} at {PHANTOM_SPACING} mm)"
                     + (" + TotalSegmentator example_ct (labels 5->liver, 64->portal_vein, 63->ivc; "
                        "model-made labels, Apache-2.0)" if real else ""),
            "validation": f"{len(val)} held-out synthetic phantoms (seed {args.seed + 1})",
        },
        "iterations": len(losses),
        "batch_size": 2,
        "patch_size": cfg["patch_size"],
        "epochs_equivalent": round(len(losses) * 2 / max(len(train) + len(real), 1), 1),
        "final_loss": round(sum(losses[-20:]) / max(len(losses[-20:]), 1), 4),
        "validation_dice": round(metrics["dice"], 4),
        "validation_dice_per_class": metrics["per_class"],
        "training_seconds": round(seconds, 1),
        "device": str(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "torch": torch.__version__,
        "platform": platform.machine(),
        "reproduce": "python -m medseg_server.training.make_starter_weights --out <folder>",
        "intended_use": "starting point for fine-tuning on a site's own labels; not for clinical use",
    }
    save_bundle(bundle, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
