"""The MONAI training loop shared by the background trainer, the benchmark, the starter weights and DDP.

Cases are brought to the network grid once (and cached), then trained on random patches centred
on every class in turn (so thin vessels and small tumours are seen), with Dice-CE loss; validation
uses sliding-window inference and MONAI's ``DiceMetric`` on the network grid.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot
from monai.transforms import (
    ClassesToIndices,
    Compose,
    RandCropByLabelClassesd,
    RandScaleIntensityd,
    RandShiftIntensityd,
)

from .. import imageio
from ..atomic import atomic_write
from ..models.predict import predict_probs
from ..models.preprocess import image_to_input, label_to_grid

DEFAULT_PATCH = (32, 48, 48)  # (z, y, x) voxels on the network grid


@dataclass
class Case:
    """One training case on the network grid: scaled image and label, (z, y, x)."""

    case_id: str
    image: np.ndarray
    label: np.ndarray
    indices: list[np.ndarray] | None = None


def _cache_key(image_path: Path, label_path: Path, cfg: dict[str, Any], mapping: dict[int, int] | None) -> str:
    parts = [json.dumps({k: cfg[k] for k in ("spacing", "hu_window")}), json.dumps(sorted((mapping or {}).items()))]
    for p in (image_path, label_path):
        st = Path(p).stat()
        parts.append(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def load_case(image_path: Path, label_path: Path, cfg: dict[str, Any], case_id: str | None = None,
              mapping: dict[int, int] | None = None, cache_dir: Path | None = None) -> Case:
    """Read an image/label pair and bring it to the network grid (cached in ``cache_dir`` when given)."""
    case_id = case_id or Path(image_path).name.split(".")[0]
    cached = Path(cache_dir) / f"{_cache_key(image_path, label_path, cfg, mapping)}.npz" if cache_dir else None
    if cached is not None and cached.exists():
        with np.load(cached) as data:
            return Case(case_id, data["image"], data["label"])
    image = imageio.read_image(Path(image_path))
    label = imageio.read_image(Path(label_path))
    ref, arr = image_to_input(image, cfg)
    lab = label_to_grid(label, ref, mapping)
    if lab.max() >= max(cfg["labels"].values()) + 1:
        lab = np.where(lab < max(cfg["labels"].values()) + 1, lab, 0).astype(np.uint8)
    if cached is not None:
        atomic_write(cached, lambda tmp: np.savez_compressed(tmp, image=arr, label=lab), suffix=".npz")
    return Case(case_id, arr, lab)


def _padded(case: Case, patch: tuple[int, int, int]) -> Case:
    pad = [(0, max(0, p - s)) for p, s in zip(patch, case.image.shape, strict=True)]
    if any(after for _, after in pad):
        return Case(case.case_id, np.pad(case.image, pad), np.pad(case.label, pad))
    return case


class PatchSampler:
    """Random training patches centred on each class in turn, with intensity augmentation."""

    def __init__(self, n_classes: int, patch: tuple[int, int, int] = DEFAULT_PATCH, seed: int = 0) -> None:
        self.patch = tuple(int(p) for p in patch)
        self.n_classes = n_classes
        ratios = [1.0] + [2.0] * (n_classes - 1)
        self.transform = Compose([
            RandCropByLabelClassesd(keys=("image", "label"), label_key="label", spatial_size=self.patch,
                                    ratios=ratios, num_classes=n_classes, num_samples=1, indices_key="indices",
                                    warn=False),
            RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
            RandShiftIntensityd(keys="image", offsets=0.05, prob=0.5),
        ])
        self.transform.set_random_state(seed=seed)
        self._to_indices = ClassesToIndices(num_classes=n_classes)

    def prepare(self, case: Case) -> Case:
        """Pad to the patch size and precompute the voxel indices of each class (once per case)."""
        case = _padded(case, self.patch)
        if case.indices is None:
            case.indices = list(self._to_indices(case.label[None]))
        return case

    def sample(self, case: Case) -> tuple[torch.Tensor, torch.Tensor]:
        data = {"image": case.image[None], "label": case.label[None], "indices": case.indices}
        out = self.transform(data)[0]
        return torch.as_tensor(out["image"]).float(), torch.as_tensor(out["label"]).long()


def train_iterations(
    net: torch.nn.Module,
    cases: list[Case],
    cfg: dict[str, Any],
    iterations: int,
    device: torch.device,
    lr: float = 1e-3,
    batch_size: int = 2,
    seed: int = 0,
    on_step: Callable[[int, float], bool] | None = None,
    rank: int = 0,
) -> list[float]:
    """Train ``net`` in place on random patches of ``cases`` for ``iterations`` optimiser steps.

    ``net`` may be wrapped in ``DistributedDataParallel`` (each rank draws its own patches, seeded
    by ``rank``). ``on_step(iteration, loss)`` returning True stops early. Returns the losses.
    """
    if not cases:
        raise ValueError("no training cases")
    n_classes = max(cfg["labels"].values()) + 1
    sampler = PatchSampler(n_classes, tuple(cfg.get("patch_size", DEFAULT_PATCH)), seed=seed + 1000 * rank)
    prepared = [sampler.prepare(c) for c in cases]
    rng = np.random.default_rng(seed + 1000 * rank)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(iterations, 1), eta_min=lr * 0.1)
    net.train()
    losses: list[float] = []
    for it in range(iterations):
        picks = rng.integers(0, len(prepared), size=batch_size)
        pairs = [sampler.sample(prepared[i]) for i in picks]
        x = torch.stack([p[0] for p in pairs]).to(device)
        y = torch.stack([p[1] for p in pairs]).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(float(loss.detach()))
        if on_step is not None and on_step(it + 1, losses[-1]):
            break
    net.eval()
    return losses


def evaluate(net: torch.nn.Module, cases: list[Case], cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Mean foreground Dice (MONAI ``DiceMetric``) over ``cases`` on the network grid, and per class."""
    n_classes = max(cfg["labels"].values()) + 1
    metric = DiceMetric(include_background=False, reduction="none", ignore_empty=True)
    rows = []
    for case in cases:
        probs = predict_probs(net, case.image, cfg, device)
        pred = torch.from_numpy(probs.argmax(axis=0))[None, None]
        truth = torch.from_numpy(case.label.astype(np.int64))[None, None]
        rows.append(metric(one_hot(pred, n_classes), one_hot(truth, n_classes))[0].numpy())
    if not rows:
        return {"dice": float("nan"), "per_class": {}, "cases": 0}
    table = np.array(rows, dtype=float)  # cases x classes, NaN where a class is absent
    names = {v: k for k, v in cfg["labels"].items()}
    with np.errstate(invalid="ignore"):
        per_class = {names.get(c + 1, str(c + 1)): _finite(np.nanmean(table[:, c])) for c in range(table.shape[1])
                     if np.isfinite(table[:, c]).any()}
        per_case = [_finite(np.nanmean(r)) if np.isfinite(r).any() else None for r in table]
    valid = [d for d in per_case if d is not None]
    return {"dice": float(np.mean(valid)) if valid else float("nan"), "per_class": per_class,
            "per_case": per_case, "cases": len(cases)}


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def split_cases(case_ids: list[str], val_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """(train, validation) ids. Membership depends only on each id's hash, so it is stable as cases
    are added; at least one validation case from 3 cases on; with fewer, validation = training."""
    def h(i: str) -> int:
        return int(hashlib.sha1(i.encode()).hexdigest()[:8], 16)

    if len(case_ids) < 3:
        return list(case_ids), list(case_ids)
    buckets = max(2, round(1 / max(val_fraction, 1e-3)))
    val = [i for i in case_ids if h(i) % buckets == 0]
    if not val:
        val = [min(case_ids, key=h)]
    if len(val) == len(case_ids):
        val = val[:1]
    return [i for i in case_ids if i not in val], val


class Timer:
    """Wall-clock seconds since creation."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0

