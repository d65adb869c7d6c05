"""Sliding-window prediction on the network grid, plain, with MC-dropout or with test-time augmentation."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from .networks import enable_dropout


def _as_batch(array_zyx: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array_zyx, dtype=np.float32))[None, None].to(device)


def window_size(roi: list[int], shape: tuple[int, ...], multiple: int = 16) -> tuple[int, ...]:
    """The configured sliding window, shrunk to the image (rounded up to ``multiple``) when it is smaller,
    so a small volume is not padded up to a large window for nothing."""
    return tuple(min(int(r), -(-int(s) // multiple) * multiple) for r, s in zip(roi, shape, strict=True))


def predict_probs(net: torch.nn.Module, array_zyx: np.ndarray, cfg: dict[str, Any], device: torch.device,
                  overlap: float = 0.25, mc_dropout: bool = False) -> np.ndarray:
    """Softmax class probabilities (C, z, y, x) for a scaled network-grid array."""
    if mc_dropout:
        enable_dropout(net)
    else:
        net.eval()
    with torch.no_grad():
        logits = sliding_window_inference(
            _as_batch(array_zyx, device), roi_size=window_size(cfg["roi_size"], array_zyx.shape), sw_batch_size=1, predictor=net,
            overlap=overlap, mode="gaussian",
        )
        probs = torch.softmax(logits, dim=1)[0]
    net.eval()
    return probs.cpu().numpy()


def mc_dropout_samples(net: torch.nn.Module, array_zyx: np.ndarray, cfg: dict[str, Any], device: torch.device,
                       samples: int = 4) -> list[np.ndarray]:
    """``samples`` probability maps with dropout active (epistemic uncertainty)."""
    return [predict_probs(net, array_zyx, cfg, device, mc_dropout=True) for _ in range(samples)]


def tta_samples(net: torch.nn.Module, array_zyx: np.ndarray, cfg: dict[str, Any], device: torch.device,
                samples: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Probability maps under test-time augmentation: intensity scale/shift, noise and small shifts.

    Every augmentation is undone on the output (shifts rolled back), so the maps are comparable.
    """
    rng = np.random.default_rng(seed)
    out = [predict_probs(net, array_zyx, cfg, device)]
    for _ in range(samples - 1):
        shift = tuple(int(s) for s in rng.integers(-3, 4, size=3))
        aug = array_zyx * rng.uniform(0.9, 1.1) + rng.uniform(-0.05, 0.05)
        aug = aug + rng.normal(0, 0.02, size=aug.shape).astype(np.float32)
        probs = predict_probs(net, np.roll(aug, shift, axis=(0, 1, 2)), cfg, device)
        out.append(np.roll(probs, tuple(-s for s in shift), axis=(1, 2, 3)))
    return out


def entropy_map(samples: list[np.ndarray]) -> np.ndarray:
    """Voxel-wise entropy (nats) of the mean of the probability samples, (z, y, x) float32."""
    mean = np.mean(samples, axis=0)
    return (-(mean * np.log(np.clip(mean, 1e-8, 1.0))).sum(axis=0)).astype(np.float32)


def uncertainty_score(samples: list[np.ndarray], entropy: np.ndarray) -> float:
    """One number per image: mean entropy over the voxels any sample calls foreground.

    Restricting to the predicted structures keeps the large, certain background from
    drowning the signal; an image where nothing is found scores the whole-volume mean.
    """
    region = np.zeros(entropy.shape, bool)
    for probs in samples:
        region |= probs.argmax(axis=0) > 0
    return float(entropy[region].mean()) if region.any() else float(entropy.mean())
