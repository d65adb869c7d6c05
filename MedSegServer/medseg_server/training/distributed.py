"""Distributed training (several GPUs or machines) with PyTorch's own ``torchrun`` and DDP.

One process per GPU; every rank reads the cases, draws its own random patches (seeded by rank)
and DDP averages the gradients, so N GPUs train N times the batch per step. Rank 0 writes the
bundle, which ``PUT /model/auto_seg`` (zipped) or copying into a version folder then serves.

One machine, 4 GPUs::

    torchrun --standalone --nproc_per_node=4 -m medseg_server.training.distributed \\
        --images studies/ --labels labels/ --out trained_bundle --init current_bundle --iterations 5000

Two machines with 8 GPUs each (run on both, ``--node_rank`` 0 and 1)::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=8 --rdzv_backend=c10d \\
        --rdzv_endpoint=HOST:29400 -m medseg_server.training.distributed ...

On CPU the same code runs with the ``gloo`` backend (``--nproc_per_node=1`` is what the tests do).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..models.bundle import Bundle, load_bundle, new_bundle, save_bundle
from .seg_loop import Timer, load_case, train_iterations


def find_pairs(images: Path, labels: Path, suffix: str) -> list[tuple[str, Path, Path]]:
    """(id, image, label) for every ``<id>.nii.gz`` in ``images`` with a ``<id><suffix>`` in ``labels``."""
    out = []
    for img in sorted(images.glob("*.nii.gz")):
        if img.name.endswith(suffix):
            continue
        case_id = img.name[: -len(".nii.gz")]
        label = labels / f"{case_id}{suffix}"
        if label.exists():
            out.append((case_id, img, label))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="DDP training of a MedSeg bundle (launch with torchrun)")
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--labels", type=Path, help="label folder (default: --images)")
    parser.add_argument("--label-suffix", default=".label.nii.gz")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder written by rank 0")
    parser.add_argument("--init", type=Path, help="bundle to start from (default: a new network)")
    parser.add_argument("--config", default="{}", help="bundle config JSON for a new network")
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=2, help="per rank")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        torch.manual_seed(args.seed)  # same initial weights on every rank
        bundle: Bundle = load_bundle(args.init) if args.init else new_bundle(json.loads(args.config))
        pairs = find_pairs(args.images, args.labels or args.images, args.label_suffix)
        if not pairs:
            raise SystemExit(f"no image/label pairs in {args.images}")
        cases = [load_case(img, lab, bundle.config, cid) for cid, img, lab in pairs]
        net = DistributedDataParallel(bundle.net.to(device), device_ids=[local_rank] if cuda else None)
        clock = Timer()
        losses = train_iterations(net, cases, bundle.config, args.iterations, device, lr=args.lr,
                                  batch_size=args.batch_size, seed=args.seed, rank=rank)
        if rank == 0:
            bundle.net = net.module
            bundle.card = {"source": "distributed training", "distributed": True, "world_size": world,
                           "backend": dist.get_backend(), "iterations": len(losses),
                           "batch_size_per_rank": args.batch_size, "train_cases": [p[0] for p in pairs],
                           "final_loss": losses[-1], "training_seconds": round(clock(), 1),
                           "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
            save_bundle(bundle, args.out)
            print(f"rank 0 of {world}: wrote {args.out} (final loss {losses[-1]:.4f})")
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
